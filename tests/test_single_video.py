"""test.py --video: a new video is extracted (random X3D weights, explicit flag) and scored per snippet."""
import csv
import dataclasses

import pytest
import torch

from scripts.checkpoint import save_checkpoint
from scripts.model import build_model, config_for_variant
from scripts.single_video import VideoScores, top_intervals
from test_video import write_video
from tests.conftest import run_script


def make_checkpoint(path, shape, sequence):
    torch.manual_seed(0)
    cfg = config_for_variant("fast", in_channels=shape[0])
    model = build_model(cfg)
    save_checkpoint(path, {"model": model.state_dict(), "model_config": dataclasses.asdict(cfg), "options": {},
                           "feature": {"shape": shape, "sequence": sequence, "crop_mode": "mean",
                                       "num_segments": 32, "frames_per_snippet": 16},
                           "epoch": 1, "metrics": {"val_roc_auc": 0.5, "val_pr_auc": 0.5, "loss": 0.7}})
    return path


@pytest.mark.parametrize("layout, shape", [("sequence", [192, 32, 1, 1]), ("map", [192, 4, 5, 5])])
def test_video_scoring_writes_csv_and_png(tmp_path, monkeypatch, layout, shape):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    video = write_video(tmp_path / "cam.avi", 110, size=(96, 72), fps=25.0)  # 110 frames: 3 clips of 48
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", shape, layout == "sequence")
    proc = run_script("test.py", "--video", video, "--checkpoint", ckpt, "--backbone", "x3d_xs",
                      "--random_weights", "--out_dir", tmp_path / "out", "--threshold", "0", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert "video score" in proc.stdout and "frames 0-109" in proc.stdout  # threshold 0: one run over all
    with open(tmp_path / "out" / "cam_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["start_frame"]), int(r["end_frame"])) for r in rows] == [(0, 47), (48, 95), (96, 109)]
    assert [float(r["seconds"]) for r in rows] == [0.0, 1.92, 3.84]
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    assert (tmp_path / "out" / "cam_scores.png").read_bytes()[:4] == b"\x89PNG"


def test_video_scoring_needs_explicit_weights(tmp_path):
    video = write_video(tmp_path / "cam.avi", 30)
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", [192, 32, 1, 1], True)
    proc = run_script("test.py", "--video", video, "--checkpoint", ckpt, "--backbone", "x3d_xs")
    assert proc.returncode == 2 and "random weights give meaningless features" in proc.stderr
    proc = run_script("test.py", "--video", video, "--test_list", "x.txt", "--checkpoint", ckpt)
    assert proc.returncode == 2 and "either --test_list" in proc.stderr


def test_top_intervals_merge_runs():
    import numpy as np
    s = VideoScores(video_score=0.9, snippet_scores=np.array([0.1, 0.7, 0.8, 0.2, 0.95, 0.1]), stride=16,
                    num_frames=90, fps=30.0)
    assert top_intervals(s, 0.5) == [(64, 79, 0.95), (16, 47, pytest.approx(0.8))]
    assert s.spans()[-1] == (80, 89)
