"""Stratified folds on UCF-Crime's official split (1,610 train / 290 test videos) and their checker."""
import random
from collections import Counter
from pathlib import Path

import pytest

from conftest import SHARED_DATA, run_script
from scripts.core.errors import MateError
from scripts.data.folds import format_fold_summary, stratified_folds, verify_folds, write_folds
from scripts.data.manifest import VideoEntry, read_manifest

K = 5


def published_list(split: str, out: Path) -> Path:
    """The official split as a path-only feature list (`X3D_Videos/Abuse/Abuse001_x264.npy`)."""
    lines = (SHARED_DATA / split).read_text().split()
    out.write_text("".join(f"X3D_Videos/{Path(ln).with_suffix('.npy').as_posix()}\n" for ln in lines))
    return out


@pytest.fixture
def lists(tmp_path):
    train = published_list("Anomaly_Train.txt", tmp_path / "train.txt")
    test = published_list("Anomaly_Test.txt", tmp_path / "test.txt")
    return train, test


@pytest.fixture
def entries(lists):
    return read_manifest(lists[0], check_exists=False)


def names(es):
    return {e.name for e in es}


def write(entries, out_dir, seed=0, test=None):
    return write_folds(stratified_folds(entries, k=K, seed=seed), out_dir, test)


def test_official_split_counts_from_fold_files(entries, tmp_path):
    assert len(entries) == 1610 and sum(e.label for e in entries) == 810
    write(entries, tmp_path / "folds")
    for i in range(K):
        train = read_manifest(tmp_path / "folds" / f"fold{i}_train.txt", check_exists=False)
        val = read_manifest(tmp_path / "folds" / f"fold{i}_val.txt", check_exists=False)
        assert Counter(e.label for e in train) == {0: 640, 1: 648}
        assert Counter(e.label for e in val) == {0: 160, 1: 162}
        assert names(train).isdisjoint(names(val)) and names(train) | names(val) == names(entries)


def test_classes_spread_evenly_and_val_parts_partition(entries):
    folds = stratified_folds(entries, k=K, seed=0)
    per_fold = [Counter(e.cls for e in val) for _, val in folds]
    for cls in {e.cls for e in entries}:
        counts = [c[cls] for c in per_fold]
        assert max(counts) - min(counts) <= 1, (cls, counts)
    vals = [names(val) for _, val in folds]
    assert sum(len(v) for v in vals) == 1610 and set().union(*vals) == names(entries)


def test_uneven_counts_stay_within_one():
    es = [VideoEntry(Path(f"Normal_Videos{i:03d}_x264.npy"), 0, "Normal") for i in range(23)]
    es += [VideoEntry(Path(f"{c}{i:03d}_x264.npy"), 1, c) for c in ("Arson", "Abuse") for i in range(9)]
    folds = stratified_folds(es, k=K, seed=3)
    for label in (0, 1):
        counts = [sum(e.label == label for e in val) for _, val in folds]
        assert max(counts) - min(counts) <= 1 and sum(counts) == (23 if label == 0 else 18)
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1


def test_seed_decides_files_and_input_order_does_not(entries, tmp_path):
    a = [p.read_bytes() for p in write(entries, tmp_path / "a", seed=0)]
    b = [p.read_bytes() for p in write(entries, tmp_path / "b", seed=0)]
    c = [p.read_bytes() for p in write(entries, tmp_path / "c", seed=1)]
    shuffled = list(entries)
    random.Random(7).shuffle(shuffled)
    d = [p.read_bytes() for p in write(shuffled, tmp_path / "d", seed=0)]
    assert a == b == d
    assert all(x != y for x, y in zip(a, c))


@pytest.mark.parametrize("k, keep, message", [
    (1, None, "at least 2 folds"),
    (5, lambda e: e.label == 1 or e.name < "Normal_Videos005", "fewer than --k 5"),
    (5, lambda e: e.label == 1, "anomalous"),
])
def test_bad_splits_are_user_errors(entries, k, keep, message):
    es = [e for e in entries if keep is None or keep(e)]
    with pytest.raises(MateError, match=message):
        stratified_folds(es, k=k)


def test_same_name_under_two_folders_is_refused(entries):
    twin = VideoEntry(Path("I3D/Abuse/Abuse001_x264.npy"), 1, "Abuse")
    with pytest.raises(MateError, match="Abuse001_x264.*listed twice"):
        stratified_folds(entries + [twin])


def test_summary_format():
    text = format_fold_summary([{"Train": (640, 648), "Val": (160, 162), "Test": (150, 140)}] * 2)
    assert text.splitlines()[:5] == ["Fold 1:", "Train -> Normal: 640, Abnormal: 648",
                                     "Val -> Normal: 160, Abnormal: 162",
                                     "Test -> Normal: 150, Abnormal: 140", ""]
    assert text.splitlines()[5] == "Fold 2:"


def test_scripts_split_then_verify(lists, tmp_path):
    train, test = lists
    out = tmp_path / "m"
    r = run_script("StratifiedKFold.py", "--rgb_list", train, "--test_list", test, "--out_dir", out)
    assert r.returncode == 0, r.stderr
    assert "Fold 1:\nTrain -> Normal: 640, Abnormal: 648\nVal -> Normal: 160, Abnormal: 162\n" \
           "Test -> Normal: 150, Abnormal: 140" in r.stdout
    assert "Fold 5:" in r.stdout and "Fold 6:" not in r.stdout and str(out) in r.stdout
    assert sorted(p.name for p in out.iterdir() if p.name != ".mate.lock") == sorted(  # the folder's lock aside
        f"fold{i}_{p}.txt" for i in range(K) for p in ("train", "val", "test"))
    assert len(read_manifest(out / "fold3_test.txt", check_exists=False)) == 290
    r = run_script("StratifiedKFold_verify.py", "--rgb_list", train, "--test_list", test,
                   "--folds_dir", out, "--k", K)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1].startswith("OK: 5 folds") and "1610 videos" in r.stdout
    assert r.stdout.count("Val -> Normal: 160, Abnormal: 162") == K


def test_rerun_with_other_seed_needs_overwrite(lists, tmp_path):
    train, _ = lists
    out = tmp_path / "m"
    assert run_script("StratifiedKFold.py", "--rgb_list", train, "--out_dir", out).returncode == 0
    assert run_script("StratifiedKFold.py", "--rgb_list", train, "--out_dir", out).returncode == 0
    before = (out / "fold0_val.txt").read_text()
    r = run_script("StratifiedKFold.py", "--rgb_list", train, "--out_dir", out, "--seed", 1)
    assert r.returncode == 2 and "--overwrite" in r.stderr and (out / "fold0_val.txt").read_text() == before
    r = run_script("StratifiedKFold.py", "--rgb_list", train, "--out_dir", out, "--seed", 1, "--overwrite")
    assert r.returncode == 0 and (out / "fold0_val.txt").read_text() != before


def _move_line(src: Path, dst: Path, *, keep: bool) -> str:
    """Move (or copy) the first video line of `src` to `dst`; returns the video's name."""
    lines = src.read_text().splitlines()
    j = next(j for j, ln in enumerate(lines) if not ln.startswith("#"))
    line = lines[j]
    if not keep:
        src.write_text("\n".join(lines[:j] + lines[j + 1:]) + "\n")
    dst.write_text(dst.read_text() + line + "\n")
    return Path(line.split()[0]).stem


@pytest.mark.parametrize("keep, expected", [
    (True, "fold 0: {v} is in both fold0_train.txt and fold0_val.txt"),
    (False, "{v} from train.txt is in no fold's val file"),
])
def test_verify_catches_val_video_in_train(lists, entries, tmp_path, keep, expected):
    out = tmp_path / "m"
    write(entries, out)
    video = _move_line(out / "fold0_val.txt", out / "fold0_train.txt", keep=keep)
    r = run_script("StratifiedKFold_verify.py", "--rgb_list", lists[0], "--folds_dir", out)
    assert r.returncode == 1, r.stdout + r.stderr
    assert expected.format(v=video) in r.stdout.splitlines()
    assert "OK:" not in r.stdout and r.stdout.splitlines()[-1].startswith("FAILED:")


@pytest.mark.parametrize("folder", ["X3D_Videos/Abuse", "I3D_Videos/elsewhere"])
def test_verify_catches_test_video_in_train(lists, entries, tmp_path, folder):
    train, test = lists
    out = tmp_path / "m"
    write(entries, out)
    # The leaked test video may sit under another folder: videos are matched by name.
    with open(out / "fold3_train.txt", "a") as f:
        f.write(f"../{folder}/Abuse028_x264.npy 1 Abuse\n")
    r = run_script("StratifiedKFold_verify.py", "--rgb_list", train, "--test_list", test, "--folds_dir", out)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "fold 3: test video Abuse028_x264 (from test.txt) is in fold3_train.txt" in r.stdout.splitlines()
    report = verify_folds(entries, out, K, read_manifest(test, check_exists=False))
    assert len(report.problems) == 1 and report.counts[3]["Train"] == (640, 649)


def test_verify_uses_fold_test_files_without_test_list(lists, entries, tmp_path):
    out = tmp_path / "m"
    write(entries, out, test=read_manifest(lists[1], check_exists=False))
    with open(out / "fold1_val.txt", "a") as f:
        f.write("../X3D_Videos/Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.npy\n")
    report = verify_folds(entries, out, K)
    assert report.problems == ["fold 1: test video Normal_Videos_003_x264 (from fold0_test.txt) "
                               "is in fold1_val.txt"]
    assert report.counts[0]["Test"] == (150, 140)


def test_overlapping_test_list_is_refused(lists, tmp_path):
    train, test = lists
    with open(test, "a") as f:
        f.write("X3D_Videos/Abuse/Abuse001_x264.npy\nX3D_Videos/Arson/Arson001_x264.npy\n")
    out = tmp_path / "m"
    r = run_script("StratifiedKFold.py", "--rgb_list", train, "--test_list", test, "--out_dir", out)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(train) in lines[0] and str(test) in lines[0]
    assert "Abuse001_x264" in lines[0] and "Arson001_x264" in lines[0]
    assert not out.exists()


def test_missing_fold_file_is_one_error_line(lists, entries, tmp_path):
    out = tmp_path / "m"
    write(entries, out)
    (out / "fold2_val.txt").unlink()
    r = run_script("StratifiedKFold_verify.py", "--rgb_list", lists[0], "--folds_dir", out)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1
    assert lines[0].startswith("error: ") and "fold2_val.txt" in lines[0] and "not found" in lines[0]


@pytest.mark.parametrize("script, flags", [
    ("StratifiedKFold.py", ["--rgb_list", "--k", "--test_list", "--out_dir", "--seed", "--overwrite"]),
    ("StratifiedKFold_verify.py", ["--rgb_list", "--k", "--test_list", "--folds_dir"]),
])
def test_help_mentions_every_flag(script, flags):
    r = run_script(script, "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())  # argparse wraps lines
    for flag in flags:
        assert flag in text
    assert "Fold 1 = fold0" in text and "default: 5" in text and "default: data/manifests" in text


def test_crop_lines_are_counted_as_videos(tmp_path):
    """A per-crop manifest (import_peers.py --crops each: 12 videos x 5 crops): StratifiedKFold.py and the
    training log count videos and name the crop lines."""
    import numpy as np

    from scripts.data.crops import count_videos
    from scripts.data.manifest import read_manifest

    lines = []
    for v in range(12):
        cls = "Normal" if v % 2 else "Abuse"
        for k in range(5):
            path = tmp_path / "f" / f"{cls}{v:03d}_x264__{k}.npy"
            path.parent.mkdir(exist_ok=True)
            np.save(path, np.zeros((4, 8), np.float32))
            lines.append(f"{path} {0 if cls == 'Normal' else 1} {cls}")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    entries = read_manifest(tmp_path / "train.txt")
    assert count_videos(entries, "train") == "12 train videos (60 crop lines)"
    assert count_videos(entries[:5], "x") == "1 x videos (5 crop lines)"
    done = run_script("StratifiedKFold.py", "--rgb_list", tmp_path / "train.txt", "--k", "3", "--out_dir",
                      tmp_path / "folds")
    assert done.returncode == 0, done.stderr
    assert "a per-crop manifest, 12 videos (60 crop lines)" in done.stdout
    total = [line for line in done.stdout.splitlines() if line.startswith("total")][0]
    assert total.split()[1:] == ["4", "4", "4"]  # videos per val part, not crop lines
