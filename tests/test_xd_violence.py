"""XD-Violence: labels and classes from its names, its annotation form, frame AP as the headline, and
an end-to-end run on synthetic [T, 5, 1024] features named like XD-Violence videos."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from scripts.core.errors import MateError
from scripts.evaluation.evaluation import load_for_scoring, per_class_frame_metric
from scripts.data.framegt import (FrameGroundTruth, align, dataset_of, frame_labels, parse_annotation_line,
                             read_annotations)
from scripts.data.lists import read_split, split_stratified
from scripts.data.manifest import infer_class, infer_label, parse_line, read_manifest, write_manifest
from scripts.evaluation.metrics import frame_ap
from scripts.evaluation.scoring import score_dataset
from scripts.data.synthetic import generate_video
from scripts.data.xd_violence import parse_name, video_name, video_stem
from tests.conftest import SHARED_DATA, run_script

XD_GT = SHARED_DATA / "XD_Annotation.txt"
# Real lines of XD_Annotation.txt: one, two, three and four intervals (names with dots and '#').
ONE = "v=u5SF4SlqNDQ__#00-02-39_00-03-41_label_G-0-0 77 1430"
TWO = "v=u5SF4SlqNDQ__#00-00-00_00-01-00_label_G-0-0 624 912 950 1441"
THREE = "Bad.Boys.II.2003__#00-06-42_00-10-00_label_B2-G-0 2610 2670 2760 3060 3167 4310"
FOUR = "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6 157 180 185 244 250 360 582 810"
# A normal test video of XD-Violence (XD_Annotation.txt lists violent videos only).
NORMAL = "A.Beautiful.Mind.2001__#00-01-45_00-02-50_label_A"


def real_lines():
    return XD_GT.read_text().splitlines()


# ------------------------------------------------------------------------------ names


def test_real_lines_are_in_the_shipped_file():
    lines = set(real_lines())
    assert {ONE, TWO, THREE, FOUR} <= lines


@pytest.mark.parametrize("name, label, classes", [
    ("v=S-7rRLrxnVQ__#1_label_B4-0-0", 1, ("Riot",)),
    ("v=u5SF4SlqNDQ__#00-00-00_00-01-00_label_G-0-0", 1, ("Explosion",)),
    ("Bad.Boys.II.2003__#00-06-42_00-10-00_label_B2-G-0", 1, ("Shooting", "Explosion")),
    ("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6", 1, ("Explosion", "Shooting", "CarAccident")),
    ("Braveheart.1995__#00-56-30_00-57-20_label_B1-0-0", 1, ("Fighting",)),
    (NORMAL, 0, ()),
])
def test_labels_and_classes_of_real_names(name, label, classes):
    xd = parse_name(name + ".npy")
    assert (xd.video, xd.label, xd.classes) == (name, label, classes)
    first = classes[0] if classes else "Normal"
    # path-only manifest lines and makelist's folder scan go through infer_label / infer_class
    assert infer_label(f"feats/test/{name}.npy") == label
    assert infer_class(f"feats/test/{name}.npy", label) == first
    assert parse_line(f"feats/{name}.npy") == (f"feats/{name}.npy", label, first)


def test_every_name_of_the_annotation_file():
    names = [line.split()[0] for line in real_lines()]
    parsed = [parse_name(n) for n in names]
    assert len(names) == 500 and all(x is not None and x.label == 1 for x in parsed)
    firsts = {x.cls for x in parsed}
    assert firsts == {"Fighting", "Shooting", "Riot", "Abuse", "CarAccident", "Explosion"}
    # 47 names carry two or three classes (label_B1-B2-0: 11, label_B2-G-0: 8, ...): all are kept
    assert sum(len(x.classes) > 1 for x in parsed) == 47
    assert sum(len(x.classes) == 3 for x in parsed) == sum(n.split("_label_")[1].count("0") == 0 for n in names) == 4
    # B5 (abuse) first: label_B5-0-0 and label_B5-B6-0
    assert sum(x.cls == "Abuse" for x in parsed) == sum("_label_B5" in n for n in names) == 8


def test_ucf_crime_rules_unchanged():
    assert infer_label("X3D_Videos/Training_Normal_Videos_Anomaly/Normal_Videos308_x264.npy") == 0
    assert infer_label("Abuse/Abuse001_x264.npy") == 1
    assert infer_class("Some/Shooting033_x264.npy", 1) == "Shooting"
    assert parse_name("Normal_Videos308_x264.npy") is None and parse_name("Abuse001_x264") is None


def test_crop_suffix_and_dots():
    crop = parse_name(f"/data/xd/i3d/{NORMAL}__3.npy")
    assert (crop.video, crop.crop, crop.label) == (NORMAL, 3, 0)
    assert video_name(f"/data/{NORMAL}__0.npy") == NORMAL and video_name("Abuse/Abuse001_x264.mp4") == "Abuse001_x264"
    movie = "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6"
    assert video_stem(movie) == video_stem(movie + ".mp4") == video_stem(f"x/{movie}.npy") == movie


def test_hash_in_names_survives_manifests(tmp_path):
    """'#' inside a name is no comment: only a line that starts with '#' is."""
    names = [NORMAL, "v=u5SF4SlqNDQ__#00-00-00_00-01-00_label_G-0-0",
             "Bad.Boys.II.2003__#00-06-42_00-10-00_label_B2-G-0"]
    feats = tmp_path / "feats"
    feats.mkdir()
    for n in names:
        np.save(feats / f"{n}.npy", np.zeros((3, 5, 4), np.float32))
    manifest = tmp_path / "m.txt"
    manifest.write_text("# XD-Violence, path-only lines\n" + "".join(f"feats/{n}.npy\n" for n in names))
    entries = read_manifest(manifest)
    assert [(e.name, e.label, e.cls) for e in entries] == [(names[0], 0, "Normal"), (names[1], 1, "Explosion"),
                                                           (names[2], 1, "Shooting")]
    again = read_manifest(write_manifest(tmp_path / "w.txt", entries))  # as MATE writes them
    assert [(e.path, e.label, e.cls) for e in again] == [(e.path, e.label, e.cls) for e in entries]


def test_split_files_and_folder_scan(tmp_path):
    # a per-crop list as the public features ship (five files per video): one name per video, dots kept
    lst = tmp_path / "xd_test.list"
    videos = [NORMAL, "Bad.Boys.1995__#01-33-51_01-34-37_label_B2-0-0"]
    lst.write_text("".join(f"/data/xd/{n}__{k}.npy\n" for n in videos for k in range(5)))
    assert read_split(lst) == videos
    root = tmp_path / "feats"
    root.mkdir()
    codes = ["A"] * 6 + ["B1-0-0", "B2-G-0", "B4-0-0", "B5-0-0", "B6-0-0", "G-0-0"]
    for i, code in enumerate(codes):
        np.save(root / f"Movie.{i}__#00-00-00_00-01-00_label_{code}.npy", np.zeros((2, 5, 4), np.float32))
    split = split_stratified(root, test_ratio=0.5, seed=0)
    got = {e.name: (e.label, e.cls) for e in split.train + split.test}
    assert got["Movie.7__#00-00-00_00-01-00_label_B2-G-0"] == (1, "Shooting")
    assert sorted(c for _, c in got.values()) == sorted(["Normal"] * 6 + ["Fighting", "Shooting", "Riot", "Abuse",
                                                                          "CarAccident", "Explosion"])


# ------------------------------------------------------------------------ ground truth


def test_real_lines_with_one_two_three_and_more_intervals():
    one, two, three, four = (parse_annotation_line(line, "XD_Annotation.txt:1") for line in (ONE, TWO, THREE, FOUR))
    # XD-Violence's pairs are half-open [start, end) (its make_gt.py: gt[start:end] = 1), stored inclusive
    assert one.intervals == ((77, 1429),)
    assert two.intervals == ((624, 911), (950, 1440))
    assert three.intervals == ((2610, 2669), (2760, 3059), (3167, 4309))
    assert four.intervals == ((157, 179), (185, 243), (250, 359), (582, 809))
    assert (three.name, three.cls, three.num_frames, three.form) == (
        "Bad.Boys.II.2003__#00-06-42_00-10-00_label_B2-G-0", "Shooting", None, "XD-Violence")
    labels = frame_labels(two, 1500)
    expected = np.zeros(1500, np.int8)
    expected[624:912] = 1
    expected[950:1441] = 1
    assert np.array_equal(labels, expected) and labels.sum() == (912 - 624) + (1441 - 950)


def test_the_shipped_file():
    anns = read_annotations(XD_GT)
    assert len(anns) == 500 and dataset_of(anns) == "XD-Violence"
    pairs = {len(a.intervals) for a in anns.values()}
    assert min(pairs) == 1 and max(pairs) == 22
    assert all(a.form == "XD-Violence" and a.num_frames is None for a in anns.values())
    ucf = read_annotations(SHARED_DATA / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")
    assert dataset_of(ucf) == "UCF-Crime"


@pytest.mark.parametrize("lines, fault", [
    (["v=x__#1_label_B1-0-0 10 20 30"], "got 3 frame numbers"),
    (["v=x__#1_label_B1-0-0 20 20"], r"interval \[20, 20\) is not a valid frame range"),
    (["v=x__#1_label_B1-0-0 10 20", "Arson011_x264.mp4  Arson  150  420  -1  -1"], "mixed with UCF-Crime's"),
])
def test_bad_xd_files(tmp_path, lines, fault):
    gt = tmp_path / "gt.txt"
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(MateError, match=fault):
        read_annotations(gt)


def test_align_xd_normal_videos_and_crop_files(tmp_path):
    gt = tmp_path / "xd.txt"
    gt.write_text("Movie.1__#1_label_B1-0-0 16 40\nMovie.2__#1_label_G-0-0 0 8\nMovie.9__#1_label_B2-0-0 0 8\n")
    anns = read_annotations(gt)
    names = ["Movie.1__#1_label_B1-0-0__0", f"{NORMAL}", "Movie.3__#1_label_B4-0-0", "Movie.2__#1_label_G-0-0"]
    paths = [tmp_path / f"{n}.npy" for n in names]  # no sidecars: N = T x 16
    scores = [np.arange(4.0), np.zeros(3), np.zeros(2), np.ones(2)]
    gt_ = align(names, ["Fighting", "Normal", "Riot", "Normal"], scores, paths, anns, labels=[1, 0, 1, 0],
                unannotated_normal=True, source="xd.txt")
    assert gt_.names == names[:2]  # the crop file finds its video's line; the normal video is all normal
    assert [len(x) for x in gt_.labels] == [64, 48] and gt_.labels[0].sum() == 24 and gt_.labels[1].sum() == 0
    assert gt_.unannotated_normal == [NORMAL]
    assert gt_.problems == ["Movie.3__#1_label_B4-0-0: not in xd.txt",
                            "Movie.2__#1_label_G-0-0: listed as normal (label 0) but xd.txt marks anomalous frames"]
    assert gt_.unlisted == ["Movie.9__#1_label_B2-0-0"]


# ----------------------------------------------------------------------------- metrics


def test_frame_ap_hand_worked():
    """Frames sorted by score: 0.9 (+), 0.8, 0.7 (+), 0.6, 0.5 (+): AP = (1/1 + 2/3 + 3/5) / 3 = 34/45."""
    labels = [np.array([1, 0]), np.array([0, 1, 1])]
    scores = [np.array([0.9, 0.6]), np.array([0.8, 0.7, 0.5])]
    assert frame_ap(labels, scores) == pytest.approx(34 / 45, abs=1e-12)
    assert frame_ap(labels, scores) == pytest.approx(average_precision_score(np.concatenate(labels),
                                                                             np.concatenate(scores)), abs=1e-12)


def test_per_class_ap_takes_the_class_and_every_normal_video():
    gt = FrameGroundTruth(labels=[np.array([0, 1]), np.array([1, 0]), np.array([0, 0])],
                          scores=[np.array([0.2, 0.9]), np.array([0.1, 0.8]), np.array([0.3, 0.85])],
                          classes=["Riot", "Shooting", "Normal"], names=["a", "b", "n"])
    ap = per_class_frame_metric(gt, frame_ap)
    # Riot: 0.9 (+), 0.85, 0.3, 0.2 -> 1; Shooting: 0.85, 0.8, 0.3, 0.1 (+) -> 1/4
    assert ap == pytest.approx({"Riot": 1.0, "Shooting": 0.25})


# ------------------------------------------------------------------------- end to end

XD_OF_UCF = {"Fighting": "B1", "Shooting": "B2", "Vandalism": "B4", "Abuse": "B5", "RoadAccidents": "B6",
             "Explosion": "G"}  # synthetic classes standing in for XD-Violence's six


def write_xd_set(root: Path, *, n: int, split: str, D: int, seed: int = 0) -> tuple[Path, list[str], dict]:
    """n synthetic videos [T, 5, D] named like XD-Violence's, no sidecars (as the public features); the
    anomalous ones' snippet intervals, and a path-only manifest."""
    rng = np.random.default_rng(seed)
    ucf = list(XD_OF_UCF)
    lines, events_of = [], {}
    for i in range(n):
        cls = "Normal" if i % 2 == 0 else ucf[(i // 2) % len(ucf)]
        x, events = generate_video(seed=seed, split=split, cls=cls, index=i, layout="sequence", feature_dim=D)
        crops = x[:, None, :] + 0.05 * rng.standard_normal((x.shape[0], 5, D)).astype(np.float32)  # [T, 5, D]
        code = "A" if cls == "Normal" else XD_OF_UCF[cls] + ("-G-0" if i % 6 == 1 else "-0-0")
        name = f"Synthetic.Movie.{split}.{i:03d}__#00-00-00_00-01-00_label_{code}"
        np.save(root / f"{name}.npy", np.maximum(crops, 0).astype(np.float16))
        lines.append(f"{name}.npy")
        if cls != "Normal":
            events_of[name] = events
    manifest = root / f"{split}.txt"
    manifest.write_text("\n".join(lines) + "\n")  # path-only: labels and classes from the names
    return manifest, lines, events_of


@pytest.fixture(scope="module")
def xd_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("xd")
    train, _, _ = write_xd_set(root, n=16, split="train", D=1024)
    test, _, events = write_xd_set(root, n=12, split="test", D=1024)
    # XD-Violence's form: violent videos only, half-open frame pairs; snippets [a, b] -> frames [16a, 16b + 16)
    gt = root / "XD_Annotation.txt"
    gt.write_text("\n".join(f"{name} " + " ".join(f"{16 * a} {16 * b + 16}" for a, b in ev)
                            for name, ev in events.items()) + "\n")
    proc = run_script("main.py", "--config", "configs/xd_i3d.json", "--train_list", train, "--val_list", test,
                      "--runs_dir", root / "runs", "--exp_name", "xd", "--max_epoch", "2", "--warmup_epochs", "1",
                      "--batch_size", "8", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    return root, test, gt, events


def test_end_to_end_frame_ap_equals_sklearn(xd_run):
    root, test, gt, events = xd_run
    ckpt = root / "runs/xd/checkpoint_best.pth"
    proc = run_script("test.py", "--test_list", test, "--checkpoint", ckpt, "--gt", gt, "--n_boot", "50",
                      "--no_progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((root / "runs/xd/test_metrics.json").read_text())
    frame = metrics["frame"]
    assert (frame["dataset"], frame["headline"]) == ("XD-Violence", "frame_ap")
    assert metrics["headline"]["metric"] == "frame_ap" and metrics["headline"]["level"] == "frame"
    assert metrics["headline"]["value"] == frame["frame_ap"]
    assert frame["n_videos"] == 12 and frame["n_unannotated_normal"] == 6 and frame["problems"] == []
    assert "frame AP" in proc.stdout and "XD-Violence's headline" in proc.stdout

    # the same frames built here by hand: every snippet's score repeated over its 16 frames (no sidecar:
    # N = T x 16), labels from the snippet intervals
    model, _, ds, _ = load_for_scoring(ckpt, test, device=torch.device("cpu"), progress=False)
    assert ds.feature_shape[0] == 1024  # the five crops averaged: [1024, T, 1, 1]
    snippets = score_dataset(model, ds, progress=False).snippets
    labels, scores = [], []
    for entry, s in zip(ds.entries, snippets):
        y = np.zeros(16 * len(s), np.int64)
        for a, b in events.get(entry.name, []):
            y[16 * a:16 * b + 16] = 1
        labels.append(y)
        scores.append(np.repeat(s, 16))
    y, s = np.concatenate(labels), np.concatenate(scores)
    assert frame["n_frames"] == y.size
    assert frame["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=1e-9)
    assert frame["frame_ap_sklearn"] == frame["pr_auc"]
    precision, recall, _ = precision_recall_curve(y, s)  # the peers' AP: XDVioDet's, UR-DMU's eval code
    assert frame["frame_ap"] == pytest.approx(auc(recall, precision), abs=1e-9)
    assert frame["frame_ap"] != pytest.approx(frame["frame_ap_sklearn"], abs=1e-6)  # two definitions, two numbers
    assert frame["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-9) and frame["frame_roc_auc"] == frame["roc_auc"]
    # per class (the first code's class): that class's videos plus all normal videos
    normal = [i for i, e in enumerate(ds.entries) if e.label == 0]
    shooting = [i for i, e in enumerate(ds.entries) if e.cls == "Shooting"] + normal
    assert frame["per_class_ap"]["Shooting"] == pytest.approx(
        average_precision_score(np.concatenate([labels[i] for i in shooting]),
                                np.concatenate([scores[i] for i in shooting])), abs=1e-9)
    assert set(frame["per_class_ap"]) == {"Fighting", "Shooting", "Riot", "Abuse", "CarAccident", "Explosion"}
    assert frame["several_classes"] == {e.name: [e.cls, "Explosion"] for e in ds.entries if "-G-0" in e.name}
