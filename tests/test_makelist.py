"""makelist.py: official splits mapped onto a feature folder, stratified splits, synthetic set."""
from pathlib import Path

import numpy as np
import pytest

from scripts.core.errors import MateError
from scripts.data.lists import read_split, split_official, split_stratified
from scripts.data.manifest import read_manifest
from tests.conftest import SHARED_DATA, run_script


def make_features(root: Path, split_lines: list[str]) -> None:
    for line in split_lines:
        rel = Path(line).with_suffix(".npy")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / rel, np.zeros((2, 4), np.float32))


def ucf_subset(n_per_file: int = 40):
    train = (SHARED_DATA / "Anomaly_Train.txt").read_text().split()
    test = (SHARED_DATA / "Anomaly_Test.txt").read_text().split()
    # every 40th video keeps all classes and both labels while staying small
    return train[::n_per_file], test[::n_per_file // 4]


def test_read_official_split():
    names = read_split(SHARED_DATA / "Anomaly_Train.txt")
    assert len(names) == 1610 and names[0] == "Abuse001_x264"
    assert sum("Normal" in n for n in names) == 800


def test_official_split_maps_and_reports_missing(tmp_path):
    train, test = ucf_subset()
    make_features(tmp_path / "feats", train[1:] + test)  # the first training video has no features
    make_features(tmp_path / "feats", ["Extra/Extra001_x264.mp4"])
    (tmp_path / "train_split.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "test_split.txt").write_text("\n".join(test) + "\n")
    result = split_official(tmp_path / "feats", tmp_path / "train_split.txt", tmp_path / "test_split.txt")
    assert len(result.train) == len(train) - 1 and len(result.test) == len(test)
    assert list(result.missing.values()) == [[Path(train[0]).stem]]
    assert result.unused == ["Extra001_x264"]
    assert {e.cls for e in result.train if e.label == 0} == {"Normal"}
    anomalous = [line for line in train[1:] if "Normal" not in line]
    assert [e.cls for e in result.train if e.label == 1] == [Path(line).parent.name for line in anomalous]
    # the published manifests' order: anomalous videos in split-file order, then the normal ones
    normal = [line for line in train[1:] if "Normal" in line]
    assert [e.name for e in result.train] == [Path(line).stem for line in anomalous + normal]


def test_makelist_cli_official_split(tmp_path):
    train, test = ucf_subset()
    make_features(tmp_path / "feats", train + test[1:])
    (tmp_path / "tr.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "te.txt").write_text("\n".join(test) + "\n")
    out_train, out_test = tmp_path / "lists" / "train.txt", tmp_path / "lists" / "test.txt"
    args = ["--features_dir", tmp_path / "feats", "--train_split", tmp_path / "tr.txt", "--test_split",
            tmp_path / "te.txt", "--out_train", out_train, "--out_test", out_test]
    proc = run_script("makelist.py", *args)
    assert proc.returncode == 1  # a missing video is a failure of the batch, the rest is written
    assert Path(test[0]).stem in proc.stderr and "missing: 1 videos" in proc.stderr
    assert "total" in proc.stdout and "Normal" in proc.stdout
    entries = read_manifest(out_train)
    assert len(entries) == len(train) and sum(e.label for e in entries) == sum("Normal" not in t for t in train)
    assert all(not line.startswith("/") for line in out_train.read_text().splitlines())  # portable paths
    proc = run_script("makelist.py", *args)  # refuses to overwrite what it wrote
    assert proc.returncode == 2 and "already exists; pass --overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_stratified_split(tmp_path):
    train, _ = ucf_subset(n_per_file=10)
    make_features(tmp_path / "f", train)
    result = split_stratified(tmp_path / "f", test_ratio=0.25, seed=0)
    assert len(result.train) + len(result.test) == len(train)
    assert abs(len(result.test) - 0.25 * len(train)) <= 1
    n0 = sum(e.label == 0 for e in result.test)
    assert abs(n0 / len(result.test) - 80 / 161) < 0.05  # label proportions are kept
    again = split_stratified(tmp_path / "f", test_ratio=0.25, seed=0)
    assert [e.path for e in again.test] == [e.path for e in result.test]
    other = split_stratified(tmp_path / "f", test_ratio=0.25, seed=1)
    assert [e.path for e in other.test] != [e.path for e in result.test]


def test_stratified_split_errors(tmp_path):
    make_features(tmp_path / "normal", ["N/Normal_Videos_1.mp4", "N/Normal_Videos_2.mp4"])
    with pytest.raises(MateError, match="every feature file is normal"):
        split_stratified(tmp_path / "normal")
    with pytest.raises(MateError, match="features folder not found"):
        split_stratified(tmp_path / "absent")
    with pytest.raises(MateError, match="test_ratio"):
        split_stratified(tmp_path / "normal", test_ratio=1.5)


def test_help_documents_every_flag():
    proc = run_script("makelist.py", "--help")
    assert proc.returncode == 0
    for flag in ("--features_dir", "--out_train", "--out_test", "--split", "--train_split", "--test_split",
                 "--test_ratio", "--synthetic", "--n_train", "--n_test", "--layout", "--seed", "--overwrite"):
        assert flag in proc.stdout


def test_synthetic_cli_writes_readable_manifests(tmp_path):
    proc = run_script("makelist.py", "--synthetic", tmp_path / "syn", "--n_train", "30", "--n_test", "14",
                      "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    train = read_manifest(tmp_path / "syn" / "train.txt", require_both_labels=True)
    test = read_manifest(tmp_path / "syn" / "test.txt", require_both_labels=True)
    assert (len(train), len(test)) == (30, 14)
    assert np.load(train[0].path).shape == (192, 16, 10, 10)
    assert run_script("makelist.py", "--synthetic", tmp_path / "syn").returncode == 2


def test_auto_split_is_random_for_other_names_and_official_for_ucf_names(tmp_path):
    make_features(tmp_path / "other", [f"Cls/Fight{i:03d}.mp4" for i in range(12)]
                  + [f"Cls/Normal_{i:03d}.mp4" for i in range(12)])
    out = tmp_path / "lists"
    proc = run_script("makelist.py", "--features_dir", tmp_path / "other", "--out_train", out / "a_train.txt",
                      "--out_test", out / "a_test.txt")
    assert proc.returncode == 0, proc.stderr
    assert "split: random split stratified by class" in proc.stdout
    train, test = ucf_subset()
    make_features(tmp_path / "ucf", train + test)
    proc = run_script("makelist.py", "--features_dir", tmp_path / "ucf", "--out_train", out / "u_train.txt",
                      "--out_test", out / "u_test.txt")
    # a subset of UCF-Crime: the official split, and every video it lacks is reported (exit 1)
    assert proc.returncode == 1 and "split: UCF-Crime's official split" in proc.stdout
    assert "missing: 1569 videos" in proc.stderr and "... and 1549 more" in proc.stderr
    assert "# test manifest: u_test.txt" in (out / "u_train.txt").read_text()
    proc = run_script("makelist.py", "--features_dir", tmp_path / "ucf", "--split", "random",
                      "--train_split", "x.txt", "--out_train", out / "r_train.txt", "--out_test", out / "r_test.txt")
    assert proc.returncode == 2 and "--split random takes no --train_split" in proc.stderr


def header_only(path: Path, shape) -> None:
    """A .npy file with a valid header and no data: the check reads headers only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)})


def test_check_a_download_complete_short_and_misshaped(tmp_path):
    """makelist.py --check: the 1,900 official names at [192, 16, 10, 10] are complete; three missing, one of
    another shape, one extra name and a text file are each one line, and the exit code is 1."""
    from scripts.data.lists import OFFICIAL_TEST, OFFICIAL_TRAIN, read_split

    folder = tmp_path / "ucf_x3d"
    names = read_split(OFFICIAL_TRAIN) + read_split(OFFICIAL_TEST)
    for name in names:
        header_only(folder / ("Normal" if "Normal" in name else name.rstrip("0123456789_x")) / f"{name}.npy",
                    (192, 16, 10, 10))
    done = run_script("makelist.py", "--check", folder)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "complete", done.stdout
    assert done.stdout.startswith(f"{folder}: 1900 .npy files; a complete ucf_x3d download holds 1900")
    for name in names[:3]:
        next(folder.rglob(f"{name}.npy")).unlink()
    header_only(next(folder.rglob(f"{names[5]}.npy")), (192, 16, 8, 8))
    header_only(folder / "Abuse" / "Copy_of_Abuse001.npy", (192, 16, 10, 10))
    (folder / "notes.npy").write_text("not an array")
    done = run_script("makelist.py", "--check", folder)
    lines = done.stdout.splitlines()
    assert done.returncode == 1 and lines[-1] == "incomplete"
    assert any(line.startswith("missing: 3 video file(s): ") and names[0] in line for line in lines)
    assert any(line.startswith("wrong shape: 2 file(s): ") and "[192, 16, 8, 8]" in line
               and "notes.npy (not a .npy array" in line for line in lines)
    assert any(line.startswith("extra: 2 file(s) not in the official split: ") for line in lines)
    wu = tmp_path / "xd"
    for i in range(4):
        header_only(wu / f"v{i}__0.npy", (30, 1024))
    done = run_script("makelist.py", "--check", wu, "--check_format", "xd_wu")
    assert done.returncode == 1 and "count: 4 of 23770 files (missing 23766" in done.stdout
