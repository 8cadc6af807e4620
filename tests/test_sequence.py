"""Sequence features end to end: training with the snippet losses, frame-level metrics with the GT."""
import json

import pytest

from scripts.data.synthetic import make_synthetic
from tests.conftest import run_script, load_script

main_script = load_script("main.py")


@pytest.fixture(scope="module")
def seq_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    make_synthetic(root / "data", n_train=120, n_test=60, seed=0, layout="sequence", progress=False)
    main_script.main(["--config", "configs/sequence.json", "--train_list", str(root / "data/train.txt"),
                      "--val_list", str(root / "data/test.txt"), "--runs_dir", str(root / "runs"),
                      "--exp_name", "seq", "--max_epoch", "12", "--warmup_epochs", "1", "--no_progress"])
    return root


def test_frame_level_auc_on_synthetic_sequences(seq_run):
    gt = seq_run / "data" / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    proc = run_script("test.py", "--test_list", seq_run / "data/test.txt", "--checkpoint",
                      seq_run / "runs/seq/checkpoint_best.pth", "--gt", gt, "--plot_videos", "2", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    frame = json.loads((seq_run / "runs/seq/test_metrics.json").read_text())["frame"]
    assert frame["roc_auc"] >= 0.85  # the stated frame-level target on the synthetic sequence layout
    assert frame["n_videos"] == 60 and frame["problems"] == [] and frame["unlisted"] == []
    assert len(list((seq_run / "runs/seq/plots/videos").glob("*.png"))) == 2
    assert "frame ROC-AUC" in proc.stdout
    metrics = json.loads((seq_run / "runs/seq/test_metrics.json").read_text())
    far = metrics["false_alarm_rate"]  # with frames: the normal videos' frames at the stored threshold and 0.5
    assert far["level"] == "frame" and far["threshold_from"].startswith("validation") and far["n"] > 0
    assert 0 <= far["at_threshold"] <= 1 and 0 <= far["at_0.5"] <= 1 and "false alarm rate" in proc.stdout
    assert set(frame["per_class_ap_trapezoid"]) == set(frame["per_class_ap"])
    assert {"video_pr_auc", "video_pr_auc_trapezoid", "frame.frame_ap"} <= set(metrics["ap_definitions"])
    # the scores behind the frame figures: snippets (.npz, no object arrays), frames (x16), a CSV
    import numpy as np
    from scripts.core.devices import resolve_device
    from scripts.evaluation.evaluation import load_for_scoring
    from scripts.evaluation.scoring import average_crops, score_dataset

    run = seq_run / "runs/seq"
    with np.load(run / "snippet_scores.npz", allow_pickle=False) as z:
        snippets, lengths, videos = z["scores"], z["lengths"], z["videos"]
    assert snippets.dtype == np.float32 and videos.dtype.kind == "U" and len(videos) == 60
    model, _, ds, _ = load_for_scoring(run / "checkpoint_best.pth", seq_run / "data/test.txt",
                                       device=resolve_device("cpu"), progress=False)
    ds, rescored = average_crops(ds, score_dataset(model, ds), source="test")
    assert lengths.tolist() == [len(s) for s in rescored.snippets]
    assert np.abs(snippets - np.concatenate(rescored.snippets)).max() < 1e-6
    frames = np.load(run / "frame_scores.npy")
    assert frames.dtype == np.float32 and len(frames) == 16 * lengths.sum()
    assert np.array_equal(frames, np.repeat(snippets, 16))
    rows = (run / "snippet_scores.csv").read_text().splitlines()
    assert rows[0] == "video,snippet,start_frame,end_frame,score" and len(rows) == 1 + lengths.sum()
    assert rows[2].split(",")[1:4] == ["1", "16", "31"]


def test_annotation_and_manifest_mismatches_are_reported(seq_run, tmp_path):
    gt = (seq_run / "data" / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").read_text().splitlines()
    dropped = gt[0].split()[0].replace(".mp4", "")
    edited = tmp_path / "gt.txt"
    edited.write_text("\n".join(gt[1:] + ["Ghost001_x264.mp4  Arson  10  20  -1  -1"]) + "\n")
    proc = run_script("test.py", "--test_list", seq_run / "data/test.txt", "--checkpoint",
                      seq_run / "runs/seq/checkpoint_best.pth", "--gt", edited, "--out_dir", tmp_path / "o",
                      "--no_progress")
    assert proc.returncode == 1  # a test video without annotation is a failure of the frame protocol
    assert "Ghost001_x264" in proc.stdout  # annotated but absent from the manifest: reported
    assert f"{dropped}: not in gt.txt" in proc.stderr
    assert (tmp_path / "o" / "test_metrics.json").is_file()  # everything else is still written


def test_frame_metrics_need_sequences(tmp_path):
    make_synthetic(tmp_path / "m", n_train=16, n_test=14, seed=0, progress=False)
    main_script.main(["--train_list", str(tmp_path / "m/train.txt"), "--val_list", str(tmp_path / "m/test.txt"),
                      "--runs_dir", str(tmp_path / "runs"), "--exp_name", "m", "--max_epoch", "1", "--no_progress"])
    proc = run_script("test.py", "--test_list", tmp_path / "m/test.txt", "--checkpoint",
                      tmp_path / "runs/m/checkpoint_best.pth", "--gt", tmp_path / "gt.txt", "--no_progress")

    assert proc.returncode == 2 and "need sequence features" in proc.stderr
