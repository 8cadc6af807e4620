"""test.py --video: a new video is extracted (random X3D weights, explicit flag) and scored per snippet."""
import csv
import dataclasses
import os
import socket
import subprocess
import sys

import pytest
import torch

from scripts.checkpoint import save_checkpoint
from scripts.model import build_model, config_for_variant
from scripts.single_video import VideoScores, top_intervals
from test_video import write_video
from tests.conftest import ROOT, run_script


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
    video = write_video(tmp_path / "cam.avi", 110, size=(96, 72), fps=25.0)  # 110 frames, clips of 48
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", shape, layout == "sequence")
    proc = run_script("test.py", "--video", video, "--checkpoint", ckpt, "--backbone", "x3d_xs",
                      "--random_weights", "--out_dir", tmp_path / "out", "--threshold", "0", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    # maps: the published extractor's clips, whole windows only (frames 96-109 are in none);
    # sequences: every frame in a snippet, the last one partial
    spans = [(0, 47), (48, 95)] + ([(96, 109)] if layout == "sequence" else [])
    last = spans[-1][1]
    assert "video score" in proc.stdout and f"frames 0-{last}" in proc.stdout  # threshold 0: one run over all
    with open(tmp_path / "out" / "cam_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["start_frame"]), int(r["end_frame"])) for r in rows] == spans
    assert [float(r["seconds"]) for r in rows] == [0.0, 1.92, 3.84][:len(spans)]
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    assert (tmp_path / "out" / "cam_scores.png").read_bytes()[:4] == b"\x89PNG"


def test_video_scoring_defaults_to_the_official_weights(tmp_path):
    """No weight flag: the Kinetics-400 weights from torch's hub cache; an empty cache offline is one line."""
    video = write_video(tmp_path / "cam.avi", 30)
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", [192, 32, 1, 1], True)
    with socket.socket() as s:  # a proxy on a closed local port: the download is refused at once
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home"), "https_proxy": closed,
           "HTTPS_PROXY": closed, "no_proxy": "", "NO_PROXY": ""}
    proc = subprocess.run([sys.executable, "test.py", "--video", str(video), "--checkpoint", str(ckpt),
                           "--backbone", "x3d_xs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: no X3D weights: X3D_XS.pyth") and "--backbone_checkpoint PATH" in proc.stderr
    proc = run_script("test.py", "--video", video, "--test_list", "x.txt", "--checkpoint", ckpt)
    assert proc.returncode == 2 and "either --test_list" in proc.stderr


def test_top_intervals_merge_runs():
    import numpy as np
    s = VideoScores(video_score=0.9, snippet_scores=np.array([0.1, 0.7, 0.8, 0.2, 0.95, 0.1]), stride=16,
                    num_frames=90, fps=30.0)
    assert top_intervals(s, 0.5) == [(64, 79, 0.95), (16, 47, pytest.approx(0.8))]
    assert s.spans()[-1] == (80, 89)
