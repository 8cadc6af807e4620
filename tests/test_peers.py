"""import_peers.py on tiny data sets generated in each peer format (RTFM's per-video [T, 10, D] with CRLF Windows
lists, Wu's per-crop files as UR-DMU and PEL4VAD name them, XD-Violence's five crops, ShanghaiTech with RTFM's
frame masks): labels by the repos' rules, the index rule cross-checked, GT lengths checked against the
features' family, and the frame-level AUC / both APs of test.py on an import equal to a direct computation the
way the peers' eval scripts do it (snippet scores repeated x16 against the concatenated GT; roc_curve + auc,
auc(recall, precision) and average_precision_score)."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from scripts.core.errors import MateError
from scripts.data import peer_synthetic
from scripts.data.manifest import read_manifest
from scripts.dataset import load_array
from scripts.data.peers import PeerVideo, check_gt_length, intervals, video_and_crop
from scripts.evaluation.evaluation import load_for_scoring
from scripts.evaluation.scoring import score_dataset
from tests.conftest import run_script

D = 16  # channels of the generated features (the peers' are 2048 / 1024)


def ucf_names(n_anomalous: int, n_normal: int, split: str) -> list[str]:
    classes = ("Abuse", "Arson", "Burglary", "Fighting")
    start = 1 if split == "train" else 50
    anomalous = [f"{classes[i % 4]}{start + i:03d}_x264" for i in range(n_anomalous)]
    normal = [f"Normal_Videos{'_' if split == 'test' else ''}{start + i:03d}_x264" for i in range(n_normal)]
    return anomalous + normal


def xd_names(n_anomalous: int, n_normal: int, split: str) -> list[str]:
    codes = ("B1-0-0", "B2-G-0", "B4-0-0")
    return ([f"Movie.{split}.{i}__#00-00-00_00-01-00_label_{codes[i % 3]}" for i in range(n_anomalous)]
            + [f"Movie.{split}.n{i}__#00-00-00_00-01-00_label_A" for i in range(n_normal)])


def sh_names(n_anomalous: int, n_normal: int, split: str) -> list[str]:
    first = 14 if split == "train" else 60
    return [f"01_{first + i:04d}" for i in range(n_anomalous)] + [f"02_{first + i:03d}" for i in range(n_normal)]


def generate(root: Path, names: list[str], *, seed: int, crops: int) -> tuple[dict, dict]:
    """Per video [T, crops, D] float32 and, for anomalous ones, one event of snippets [a, b] that lifts a few
    channels (so a model has something to find); returns {name: array}, {name: (a, b)}."""
    rng = np.random.default_rng(seed)
    arrays, events = {}, {}
    for name in names:
        T = int(rng.integers(6, 15))
        x = rng.random((T, 1, D)) + 0.2 * rng.random((T, crops, D))
        anomalous = "Normal" not in name and "label_A" not in name and not name.startswith("02_")
        if anomalous:
            a = int(rng.integers(0, T - 3))
            b = a + int(rng.integers(1, 3))
            x[a:b + 1, :, :4] += 2.0
            events[name] = (a, b)
        arrays[name] = x.astype(np.float32)
    return arrays, events


def frame_gt(arrays: dict, events: dict, names: list[str]) -> np.ndarray:
    """The concatenated frame GT the peers ship: 16 frames per snippet, 1 on the event's snippets."""
    parts = []
    for name in names:
        g = np.zeros(16 * len(arrays[name]), np.float32)
        if name in events:
            a, b = events[name]
            g[16 * a:16 * b + 16] = 1
        parts.append(g)
    return np.concatenate(parts)


def write_rtfm(root: Path, split: str, names: list[str], arrays: dict) -> Path:
    """RTFM's layout (scripts/data/peer_synthetic.py writes it): per-video files, a CRLF list of Windows paths."""
    return peer_synthetic.write_rtfm(root, split, names, arrays, root / f"rtfm-{split}.list")


def write_wu(root: Path, split: str, names: list[str], arrays: dict, *, pel4vad: bool = False) -> Path:
    """Wu's layout (scripts/data/peer_synthetic.py writes it): per-crop files, UR-DMU's (or PEL4VAD's) names."""
    return peer_synthetic.write_wu(root, split, names, arrays, root / f"wu-{split}.list", pel4vad=pel4vad)


def import_set(root: Path, family: str, dataset: str, train: Path, test: Path, *gt_args) -> Path:
    out = root / "import"
    done = run_script("import_peers.py", "--family", family, "--dataset", dataset, "--train_list", train,
                      "--test_list", test, *gt_args, "--features_root", root, "--out_dir", out, "--no_progress")
    assert done.returncode == 0, done.stderr
    return out


def direct_frame_figures(out: Path, checkpoint: Path, gt: np.ndarray) -> dict:
    """As the peers' eval scripts: each snippet score repeated 16 times, against the concatenated GT."""
    model, _, ds, _ = load_for_scoring(checkpoint, out / "test.txt", device=torch.device("cpu"), progress=False)
    pred = np.concatenate([np.repeat(s, 16) for s in score_dataset(model, ds, progress=False).snippets])
    fpr, tpr, _ = roc_curve(gt, pred)
    precision, recall, _ = precision_recall_curve(gt, pred)
    return {"frame_roc_auc": auc(fpr, tpr), "frame_ap": auc(recall, precision),
            "frame_ap_sklearn": average_precision_score(gt, pred)}


def train_and_test(root: Path, out: Path, config: str = "configs/sequence.json", *extra) -> dict:
    runs = root / "runs"
    done = run_script("main.py", "--config", config, "--train_list", out / "train.txt", "--val_list",
                      out / "test.txt", "--runs_dir", runs, "--exp_name", "peer", "--max_epoch", "2",
                      "--batch_size", "4", "--num_segments", "8", "--no_progress", "--no_plots", *extra)
    assert done.returncode == 0, done.stderr
    done = run_script("test.py", "--test_list", out / "test.txt", "--checkpoint", runs / "peer/checkpoint_best.pth",
                      "--gt", out / "test_gt.txt", "--no_progress", "--no_plots", "--n_boot", "20")
    assert done.returncode == 0, done.stderr
    return json.loads((runs / "peer/test_metrics.json").read_text())


def imported(tmp_path: Path, family: str, dataset: str, train_names: list, test_names: list, *, seed: int,
             crops: int, gt_name: str = "gt.npy"):
    """Peer-format feature files of the names (rtfm: one [T, K, D] file per video; wu: a file per crop), their
    concatenated frame GT, and import_peers.py's import of both: (output folder, arrays, GT)."""
    arrays, events = generate(tmp_path, train_names + test_names, seed=seed, crops=crops)
    write = write_rtfm if family == "rtfm" else write_wu
    train, test = write(tmp_path, "train", train_names, arrays), write(tmp_path, "test", test_names, arrays)
    gt = frame_gt(arrays, events, test_names)
    np.save(tmp_path / gt_name, gt)
    return import_set(tmp_path, family, dataset, train, test, "--gt", tmp_path / gt_name), arrays, gt


@pytest.mark.parametrize("family", ["rtfm", "wu"])
def test_ucf_import_equals_the_peers_computation(tmp_path, family):
    train_names, test_names = ucf_names(6, 6, "train"), ucf_names(4, 4, "test")
    out, arrays, gt = imported(tmp_path, family, "ucf", train_names, test_names, seed=0, crops=10, gt_name="gt-ucf.npy")
    entries = read_manifest(out / "train.txt")
    assert [e.name for e in entries] == train_names and [e.label for e in entries] == [1] * 6 + [0] * 6
    assert [e.cls for e in entries[:4]] == ["Abuse", "Arson", "Burglary", "Fighting"]
    record = json.loads((out / "import.json").read_text())
    assert (record["crops"], record["test_frames"], record["test_positive_frames"]) == (10, gt.size, int(gt.sum()))
    first = np.load(read_manifest(out / "test.txt")[0].path)
    expected = arrays[test_names[0]] if family == "rtfm" else arrays[test_names[0]].mean(axis=1)
    np.testing.assert_allclose(first, expected, rtol=1e-6)  # rtfm: the file itself; wu: the crops' mean
    # folds of the import keep the videos' names (a link's own name, not its target's `_i3d`)
    assert run_script("StratifiedKFold.py", "--rgb_list", out / "train.txt", "--k", "2", "--out_dir",
                      out / "folds").returncode == 0
    assert {e.name for e in read_manifest(out / "folds/fold0_train.txt")} <= set(train_names)
    metrics = train_and_test(tmp_path, out, "configs/ucf_i3d.json")
    frame = metrics["frame"]
    assert frame["dataset"] == "UCF-Crime" and metrics["headline"]["metric"] == "frame_roc_auc"
    assert frame["n_frames"] == gt.size and frame["problems"] == []
    direct = direct_frame_figures(out, tmp_path / "runs/peer/checkpoint_best.pth", gt)
    for key in ("frame_roc_auc", "frame_ap", "frame_ap_sklearn"):
        assert frame[key] == pytest.approx(direct[key], abs=1e-9), key


def test_pel4vad_names_crop_zero_without_a_suffix(tmp_path):
    names = ucf_names(2, 2, "train")
    arrays, _ = generate(tmp_path, names, seed=1, crops=10)
    write_wu(tmp_path, "train", names, arrays, pel4vad=True)
    assert video_and_crop("train/Abuse001_x264.npy", "ucf") == ("Abuse001_x264", None)
    assert video_and_crop("train/Abuse001_x264__3.npy", "ucf") == ("Abuse001_x264", 3)
    assert video_and_crop("test/01_0015_7.npy", "shanghaitech") == ("01_0015", 7)
    assert video_and_crop("G:\\UCF_Train_ten_crop_i3d\\Abuse001_x264_i3d.npy", "ucf") == ("Abuse001_x264", None)
    test_names = ucf_names(2, 2, "test")
    arrays.update(generate(tmp_path, test_names, seed=2, crops=10)[0])
    write_wu(tmp_path, "test", test_names, arrays, pel4vad=True)
    np.save(tmp_path / "gt.npy", np.zeros(16 * sum(len(arrays[n]) for n in test_names), np.float32))
    out = import_set(tmp_path, "wu", "ucf", tmp_path / "wu-train.list", tmp_path / "wu-test.list",
                     "--gt", tmp_path / "gt.npy")
    assert json.loads((out / "import.json").read_text())["crops"] == 10


def test_xd_violence_five_crops_and_its_headline(tmp_path):
    train_names, test_names = xd_names(6, 6, "train"), xd_names(4, 4, "test")
    out, arrays, gt = imported(tmp_path, "wu", "xd", train_names, test_names, seed=3, crops=5)
    assert [e.cls for e in read_manifest(out / "train.txt")[:3]] == ["Fighting", "Shooting", "Riot"]
    metrics = train_and_test(tmp_path, out, "configs/xd_i3d.json")
    assert metrics["frame"]["dataset"] == "XD-Violence" and metrics["headline"]["metric"] == "frame_ap"
    direct = direct_frame_figures(out, tmp_path / "runs/peer/checkpoint_best.pth", gt)
    assert metrics["frame"]["frame_ap"] == pytest.approx(direct["frame_ap"], abs=1e-9)
    assert metrics["frame"]["frame_ap_sklearn"] == pytest.approx(direct["frame_ap_sklearn"], abs=1e-9)


def test_shanghaitech_masks_config_and_headline(tmp_path):
    """RTFM's test_frame_mask/<video>.npy holds n frames; its gt-sh.npy pads each to 16 x ceil(n/16) with the
    last label, and normal videos are zeros: the import gives exactly those frames."""
    train_names, test_names = sh_names(6, 6, "train"), sh_names(4, 4, "test")
    arrays, events = generate(tmp_path, train_names + test_names, seed=4, crops=10)
    train, test = write_rtfm(tmp_path, "train", train_names, arrays), write_rtfm(tmp_path, "test", test_names, arrays)
    masks = tmp_path / "test_frame_mask"
    masks.mkdir()
    gt = []
    for name in test_names:
        full = np.zeros(16 * len(arrays[name]), np.uint8)
        if name in events:
            a, b = events[name]
            full[16 * a:16 * len(arrays[name])] = 1  # an event running to the end: the padding repeats 1
            n = 16 * len(arrays[name]) - 5  # the video's own frame count: its last snippet partial
            np.save(masks / f"{name}.npy", full[:n])
        gt.append(full)
    out = import_set(tmp_path, "rtfm", "shanghaitech", train, test, "--frame_masks", masks)
    assert [e.label for e in read_manifest(out / "train.txt")] == [1] * 6 + [0] * 6
    assert (out / "test_gt.txt").read_text().startswith("# dataset: ShanghaiTech\n")
    metrics = train_and_test(tmp_path, out, "configs/shanghaitech.json", "--oracle_test_list", out / "test.txt",
                             "--oracle_gt", out / "test_gt.txt")
    assert metrics["frame"]["dataset"] == "ShanghaiTech" and metrics["headline"]["metric"] == "frame_roc_auc"
    # the oracle epoch by the benchmark's frame-level figure: the argmax of metrics.csv's oracle column
    with open(tmp_path / "runs/peer/metrics.csv") as f:
        per_epoch = [float(r["oracle_frame_roc_auc"]) for r in csv.DictReader(f)]
    assert metrics["oracle"]["metric"] == "frame_roc_auc" and metrics["oracle"]["epoch"] == 1 + int(np.argmax(per_epoch))
    direct = direct_frame_figures(out, tmp_path / "runs/peer/checkpoint_best.pth", np.concatenate(gt))
    assert metrics["frame"]["frame_roc_auc"] == pytest.approx(direct["frame_roc_auc"], abs=1e-9)


def test_gt_of_the_other_family_or_the_wrong_length_is_refused_in_one_line(tmp_path):
    videos = [PeerVideo(f"v{i}", 1, "Abuse", i + 1, [], snippets=s) for i, s in enumerate([69_000, 355])]
    with pytest.raises(MateError, match=r"gt-ucf.npy: 1,114,144 frames is the GT of the rtfm family's features "
                                        r"\(one \[T, K, D\] file per video .*\); these wu features need "
                                        r"16 x 69,355 = 1,109,680: a GT is never paired with the other family"):
        check_gt_length(1_114_144, videos, Path("gt-ucf.npy"), "ucf", "wu")
    names = ucf_names(2, 2, "train") + ucf_names(2, 2, "test")
    arrays, events = generate(tmp_path, names, seed=5, crops=10)
    train, test = write_rtfm(tmp_path, "train", names[:4], arrays), write_rtfm(tmp_path, "test", names[4:], arrays)
    gt = frame_gt(arrays, events, names[4:])
    np.save(tmp_path / "short.npy", gt[16:])  # one snippet short: the first video's labels no longer fit
    done = run_script("import_peers.py", "--family", "rtfm", "--dataset", "ucf", "--train_list", train, "--test_list",
                      test, "--gt", tmp_path / "short.npy", "--features_root", tmp_path, "--out_dir", tmp_path / "o")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {tmp_path / 'short.npy'}: {gt.size - 16:,} frames, but 16 x the ")
    assert "it first breaks at" in lines[0]
    # the wu family's lists given as rtfm: a per-crop file is named
    write_wu(tmp_path, "train", names[:4], arrays)
    done = run_script("import_peers.py", "--family", "rtfm", "--dataset", "ucf", "--train_list",
                      tmp_path / "wu-train.list", "--test_list", test, "--gt", tmp_path / "short.npy",
                      "--features_root", tmp_path, "--out_dir", tmp_path / "o")
    assert done.returncode == 2 and "a per-crop file ('__0') in a list of the rtfm family" in done.stderr


def test_names_that_disagree_with_the_index_rule_are_refused(tmp_path):
    names = ucf_names(2, 2, "train")
    order = [names[0], names[2], names[1], names[3]]  # a normal video before an anomalous one
    arrays, _ = generate(tmp_path, names, seed=6, crops=10)
    train = write_rtfm(tmp_path, "train", order, arrays)
    done = run_script("import_peers.py", "--family", "rtfm", "--dataset", "ucf", "--train_list", train, "--test_list",
                      train, "--gt", tmp_path / "none.npy", "--features_root", tmp_path, "--out_dir", tmp_path / "o")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {train}:2: {names[2]} is normal by its name, but the peers' index rule "
                                   "reads the first 2 lines as the anomalous videos: names and index disagree; "
                                   "reorder the list (anomalous videos first)")


def test_intervals_are_inclusive_runs():
    assert intervals(np.array([0, 1, 1, 0, 0, 1])) == [(1, 2), (5, 5)]
    assert intervals(np.zeros(4)) == []


@pytest.mark.parametrize("family", ["wu", "rtfm"])
def test_each_crop_a_sample_and_the_mean_over_crops_at_test(tmp_path, family):
    """--crops each (UR-DMU, PEL4VAD, BN-WVAD; for RTFM's [T, K, D] files, K links to the one file, line k
    reading crop k): a manifest line per crop, folds that keep a video's crops together, and test.py's video
    and frame figures from the mean over each video's crops, equal to the peers' computation (crop scores
    averaged, then repeated x16 against the GT)."""
    train_names, test_names = ucf_names(6, 6, "train"), ucf_names(4, 4, "test")
    arrays, events = generate(tmp_path, train_names + test_names, seed=7, crops=3)
    write = write_wu if family == "wu" else write_rtfm
    train, test = write(tmp_path, "train", train_names, arrays), write(tmp_path, "test", test_names, arrays)
    gt = frame_gt(arrays, events, test_names)
    np.save(tmp_path / "gt.npy", gt)
    out = import_set(tmp_path, family, "ucf", train, test, "--gt", tmp_path / "gt.npy", "--crops", "each")
    entries = read_manifest(out / "train.txt")
    assert [e.name for e in entries[:4]] == ["Abuse001_x264__0", "Abuse001_x264__1", "Abuse001_x264__2",
                                             "Arson002_x264__0"]
    for k in range(3):  # every line is that crop's [T, D] sequence, whichever family wrote it
        np.testing.assert_array_equal(load_array(entries[k].path), arrays["Abuse001_x264"][:, k, :])
    if family == "rtfm":  # links, nothing written apart
        assert all(e.path.is_symlink() for e in entries)
    assert run_script("StratifiedKFold.py", "--rgb_list", out / "train.txt", "--test_list", out / "test.txt",
                      "--k", "3", "--out_dir", out / "folds").returncode == 0
    check = run_script("StratifiedKFold_verify.py", "--rgb_list", out / "train.txt", "--test_list", out / "test.txt",
                       "--folds_dir", out / "folds", "--k", "3")
    assert check.returncode == 0, check.stdout
    for k in range(3):
        val = {e.name.rsplit("__", 1)[0] for e in read_manifest(out / f"folds/fold{k}_val.txt")}
        train_videos = {e.name.rsplit("__", 1)[0] for e in read_manifest(out / f"folds/fold{k}_train.txt")}
        assert val and not val & train_videos  # a video's crops on one side
    runs = tmp_path / "runs"
    assert run_script("main.py", "--config", "configs/sequence.json", "--train_list", out / "folds/fold0_train.txt",
                      "--val_list", out / "folds/fold0_val.txt", "--runs_dir", runs, "--exp_name", "crops",
                      "--max_epoch", "2", "--batch_size", "4", "--num_segments", "8", "--no_progress",
                      "--no_plots").returncode == 0
    ckpt = runs / "crops/checkpoint_best.pth"
    done = run_script("test.py", "--test_list", out / "test.txt", "--checkpoint", ckpt, "--gt", out / "test_gt.txt",
                      "--no_progress", "--no_plots", "--n_boot", "20")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((runs / "crops/test_metrics.json").read_text())
    assert metrics["n_videos"] == 8 and metrics["frame"]["n_videos"] == 8  # videos, not their 24 crops
    model, _, ds, _ = load_for_scoring(ckpt, out / "test.txt", device=torch.device("cpu"), progress=False)
    crops = score_dataset(model, ds, progress=False)
    snippets = [np.mean(crops.snippets[3 * v:3 * v + 3], axis=0) for v in range(8)]
    video = crops.video.reshape(8, 3).mean(axis=1)
    fpr, tpr, _ = roc_curve(gt, np.concatenate([np.repeat(s, 16) for s in snippets]))
    assert metrics["frame"]["frame_roc_auc"] == pytest.approx(auc(fpr, tpr), abs=1e-9)
    labels = np.array([1] * 4 + [0] * 4)
    fpr, tpr, _ = roc_curve(labels, video)
    assert metrics["video_roc_auc"] == pytest.approx(auc(fpr, tpr), abs=1e-9)


def test_pel4vad_shanghaitech_labels_its_lines_and_s3r_lists_bare_ids(tmp_path):
    """PEL4VAD's ShanghaiTech list is alphabetical with a label column (`train/01_0014_0.npy 1.0`): no index
    rule applies, the column must agree with the name; S3R's CSV lists bare ids under a `video-id` header and
    keeps `<id>_i3d.npy` files."""
    train_names, test_names = sh_names(3, 3, "train"), sh_names(2, 2, "test")
    arrays, events = generate(tmp_path, train_names + test_names, seed=8, crops=2)
    folder = tmp_path / "sh"
    folder.mkdir()
    lines = []
    for name in sorted(train_names):
        for k in range(2):
            np.save(folder / f"{name}_{k}.npy", arrays[name][:, k])
            lines.append(f"train/{name}_{k}.npy {1.0 if name.startswith('01_') else 0.0}")
    lines = lines[6:8] + lines[:6] + lines[8:]  # a normal video first, as alphabetical order interleaves them
    (tmp_path / "sh-train.list").write_text("\n".join(lines) + "\n")
    for name in test_names:
        for k in range(2):
            np.save(folder / f"{name}_{k}.npy", arrays[name][:, k])
    (tmp_path / "sh-test.list").write_text("".join(f"test/{n}_{k}.npy\n" for n in test_names for k in range(2)))
    np.save(tmp_path / "sh-gt.npy", frame_gt(arrays, events, test_names))
    out = import_set(tmp_path, "wu", "shanghaitech", tmp_path / "sh-train.list", tmp_path / "sh-test.list",
                     "--gt", tmp_path / "sh-gt.npy")
    assert sorted(e.label for e in read_manifest(out / "train.txt")) == [0, 0, 0, 1, 1, 1]
    wrong = tmp_path / "wrong.list"
    wrong.write_text(lines[0].replace(" 0.0", " 1.0") + "\n" + "\n".join(lines[1:]) + "\n")
    done = run_script("import_peers.py", "--family", "wu", "--dataset", "shanghaitech", "--train_list", wrong,
                      "--test_list", tmp_path / "sh-test.list", "--gt", tmp_path / "sh-gt.npy", "--features_root",
                      tmp_path, "--out_dir", tmp_path / "o2")
    assert done.returncode == 2 and "list and name disagree" in done.stderr
    # S3R: `video-id` header, bare ids; the features are <id>_i3d.npy [T, 10, D]
    s3r = tmp_path / "s3r"
    s3r.mkdir()
    names = ucf_names(2, 2, "train") + ucf_names(2, 2, "test")
    more, ev = generate(tmp_path, names, seed=9, crops=10)
    for name in names:
        np.save(s3r / f"{name}_i3d.npy", more[name])
    (tmp_path / "tr.csv").write_text("video-id\n" + "\n".join(names[:4]) + "\n")
    (tmp_path / "te.csv").write_text("video-id\n" + "\n".join(names[4:]) + "\n")
    np.save(tmp_path / "g.npy", frame_gt(more, ev, names[4:]))
    done = run_script("import_peers.py", "--family", "rtfm", "--dataset", "ucf", "--train_list", tmp_path / "tr.csv",
                      "--test_list", tmp_path / "te.csv", "--gt", tmp_path / "g.npy", "--features_root", s3r,
                      "--out_dir", tmp_path / "o3", "--no_progress")
    assert done.returncode == 0, done.stderr
    assert [e.name for e in read_manifest(tmp_path / "o3/test.txt")] == names[4:]


def test_rtfm_crops_scored_each_and_averaged_and_frame_files_of_the_gt_length(tmp_path):
    """main.py --crop_mode score_mean on an RTFM-family import ([T, 10, D] per video): each crop scored,
    the scores averaged over crops (scripts/models/crop_scoring.py), trained and tested; test.py's per-frame
    file has the length of the peers' gt-ucf.npy."""
    from scripts.models import crop_scoring
    from scripts.model import build_model, config_for_variant

    out, _, gt = imported(tmp_path, "rtfm", "ucf", ucf_names(6, 6, "train"), ucf_names(4, 4, "test"), seed=0,
                          crops=10, gt_name="gt-ucf.npy")
    metrics = train_and_test(tmp_path, out, "configs/ucf_i3d.json", "--crop_mode", "score_mean")
    assert metrics["frame"]["n_frames"] == gt.size and 0 <= metrics["frame"]["frame_roc_auc"] <= 1
    frames = np.load(tmp_path / "runs/peer/frame_scores.npy")
    assert frames.shape == gt.shape  # the peers' pred.npy convention: a GT-long array
    # the rule itself: the mean of the crops' probabilities
    torch.manual_seed(0)
    model = build_model(config_for_variant("fast", in_channels=16)).eval()
    x = torch.randn(2, 16, 8, 10, 1)  # [B, D, T, K, 1]
    with torch.no_grad():
        out_ = crop_scoring.forward(model, x, None, "score_mean")
        one = [torch.sigmoid(model(x[:, :, :, k:k + 1]).video_logit) for k in range(10)]
    assert torch.allclose(torch.sigmoid(out_.video_logit), torch.stack(one).mean(0), atol=1e-5)


def test_a_crop_line_past_the_files_crops_is_one_line(tmp_path):
    """A per-crop line `<video>__<k>.npy` of a [T, K, D] file reads crop k; k >= K is refused naming the file."""
    np.save(tmp_path / "v.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    (tmp_path / "v__2.npy").symlink_to("v.npy")
    (tmp_path / "v__3.npy").symlink_to("v.npy")
    np.testing.assert_array_equal(load_array(tmp_path / "v__2.npy"), [[8, 9, 10, 11], [20, 21, 22, 23]])
    with pytest.raises(MateError, match=r"v__3.npy: a line for crop 3 of a file with 3 crops \[2, 3, 4\]"):
        load_array(tmp_path / "v__3.npy")
