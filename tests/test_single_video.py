"""test.py --video: a new video is extracted (random X3D weights, explicit flag) and scored per snippet."""
import csv
import json
import dataclasses
import os
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from scripts.models.checkpoint import save_checkpoint
from scripts.model import build_model, config_for_variant
from scripts.evaluation.metrics import f1_threshold
from scripts.evaluation.single_video import VideoScorer, VideoScores, top_intervals
from scripts.evaluation.video_outputs import gt_seconds, timeline_figure
from test_video import write_video
from tests.conftest import ROOT, TEST_DATA, run_script

CLIP = TEST_DATA / "vtest_clip.avi"  # 100 frames, 320x240, 10 fps


def make_checkpoint(path, shape, sequence):
    torch.manual_seed(0)
    cfg = config_for_variant("fast", in_channels=shape[0])
    model = build_model(cfg)
    save_checkpoint(path, {"model": model.state_dict(), "model_config": dataclasses.asdict(cfg), "options": {},
                           "feature": {"shape": shape, "sequence": sequence, "crop_mode": "mean",
                                       "num_segments": 32, "frames_per_snippet": 16},
                           "epoch": 1, "metrics": {"val_roc_auc": 0.5, "val_pr_auc": 0.5, "loss": 0.7}})
    return path


def make_checkpoint_with(path, shape, sequence, **metrics):
    make_checkpoint(path, shape, sequence)
    ckpt = torch.load(path, weights_only=False)
    ckpt["metrics"].update(metrics)
    save_checkpoint(path, ckpt)
    return path


def read_scores(folder):
    lines = (folder / "scores.csv").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1] == "start_s,end_s,start_frame,end_frame,score"
    return lines[0], list(csv.DictReader(lines[1:]))


@pytest.mark.parametrize("layout, shape", [("sequence", [192, 32, 1, 1]), ("map", [192, 4, 5, 5])])
def test_video_scoring_writes_scores_timeline_and_overlay(tmp_path, monkeypatch, layout, shape):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    video = write_video(tmp_path / "cam.avi", 110, size=(96, 72), fps=25.0)  # 4.4 s; x3d_xs clips of 1.6 s
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", shape, layout == "sequence")
    proc = run_script("test.py", "--video", video, "--checkpoint", ckpt, "--backbone", "x3d_xs", "--random_weights",
                      "--out_dir", tmp_path / "out", "--threshold", "0", "--window_clips", "1", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    head, rows = read_scores(tmp_path / "out" / "cam")
    assert "RANDOM X3D WEIGHTS" in head and "threshold 0: --threshold" in head
    spans = [(float(r["start_s"]), float(r["end_s"])) for r in rows]
    frames = [(int(r["start_frame"]), int(r["end_frame"])) for r in rows]
    if layout == "sequence":  # snippets of 1.6 s covering the whole video, the last one partial
        assert "one point per snippet" in head
        assert spans == [(0.0, 1.6), (1.6, 3.2), (3.2, 4.4)] and frames == [(0, 39), (40, 79), (80, 109)]
    else:  # maps: whole windows only (the frames after 3.2 s are in none), one clip per window here
        assert "sliding window: the max-pooled map of 1 consecutive clips" in head
        assert spans == [(0.0, 1.6), (1.6, 3.2)] and frames[0] == (0, 39)
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    assert "0.0-" in proc.stdout  # threshold 0: one interval from the start
    assert (tmp_path / "out" / "cam" / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    overlay = cv2.VideoCapture(str(tmp_path / "out" / "cam" / "overlay.mp4"))
    assert overlay.get(cv2.CAP_PROP_FRAME_COUNT) == 110 and overlay.get(cv2.CAP_PROP_FPS) == 25.0
    assert (overlay.get(cv2.CAP_PROP_FRAME_WIDTH), overlay.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 72)
    ok, frame = overlay.read()
    assert ok and frame[0, 48, 2] > 150 and frame[0, 48, 0] < 100  # threshold 0: a red border from frame 0


def test_sliding_windows_of_a_map_checkpoint(tmp_path):
    """K clips per window, sliding by one: 10 s at 10 fps give 6 x3d_xs clips, so K = 3 gives 4 windows of
    3 x 1.6 s; the default K (about 10 s) is more than 6 clips: one window over all of them."""
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", [192, 4, 5, 5], False)
    scorer = VideoScorer(ckpt, backbone="x3d_xs", random_weights=True, window_clips=3)
    scores = scorer.score(CLIP, progress=False)
    assert scores.starts.tolist() == pytest.approx([0, 1.6, 3.2, 4.8])
    assert scores.ends.tolist() == pytest.approx([4.8, 6.4, 8.0, 9.6])
    default = VideoScorer(ckpt, backbone="x3d_xs", random_weights=True)
    assert default.K == 6  # (10 - 1.6) / 1.6 + 1 rounded
    one = default.score(CLIP, progress=False)
    assert len(one.scores) == 1 and one.ends[0] == pytest.approx(9.6)
    assert one.scores[0] == pytest.approx(one.video_score, abs=1e-6)  # all clips pooled = the video's map


def test_the_validation_threshold_is_stored_and_used(tmp_path):
    ckpt = make_checkpoint_with(tmp_path / "ckpt.pth", [192, 32, 1, 1], True, val_threshold=0.375)
    scorer = VideoScorer(ckpt, backbone="x3d_xs", random_weights=True)
    assert scorer.threshold == 0.375 and "selected on validation" in scorer.threshold_said
    proc = run_script("test.py", "--video", CLIP, "--checkpoint", ckpt, "--backbone", "x3d_xs", "--random_weights",
                      "--out_dir", tmp_path / "out", "--no_overlay", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    head, _ = read_scores(tmp_path / "out" / "vtest_clip")
    assert "threshold 0.375: selected on validation" in head
    assert not (tmp_path / "out" / "vtest_clip" / "overlay.mp4").exists()  # --no_overlay
    old = make_checkpoint(tmp_path / "old.pth", [192, 32, 1, 1], True)  # no stored threshold: 0.5, said
    assert VideoScorer(old, backbone="x3d_xs", random_weights=True).threshold_said.startswith("threshold 0.5: the "
                                                                                             "checkpoint stores no")


def test_f1_threshold_is_sklearns_best_f1():
    from sklearn.metrics import f1_score
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    t = f1_threshold(y, s)
    best = max(f1_score(y, s >= c) for c in np.unique(s))
    assert f1_score(y, s >= t) == pytest.approx(best)
    assert f1_threshold([1, 1], [0.2, 0.9]) == 0.5  # one class: the default


def test_folder_mode_ranks_and_lists_failures(tmp_path):
    root = tmp_path / "cams"
    write_video(root / "north" / "cam1.avi", 60, size=(96, 72))
    write_video(root / "south" / "cam1.avi", 90, size=(96, 72))  # the same name in another folder
    (root / "south" / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", [192, 32, 1, 1], True)
    proc = run_script("test.py", "--video_root", root, "--checkpoint", ckpt, "--backbone", "x3d_xs",
                      "--random_weights", "--out_dir", tmp_path / "out", "--no_overlay", "--no_progress")
    assert proc.returncode == 1 and "1 failed" in proc.stderr
    with open(tmp_path / "out" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["video"] for r in rows) == ["north/cam1.avi", "south/cam1.avi"]
    peaks = [float(r["peak_score"]) for r in rows]
    assert peaks == sorted(peaks, reverse=True) and all("RANDOM" in r["note"] for r in rows)
    assert (tmp_path / "out" / "north" / "cam1" / "scores.csv").is_file()
    assert (tmp_path / "out" / "south" / "cam1" / "timeline.png").is_file()
    with open(tmp_path / "out" / "failures.csv") as f:
        failed = list(csv.DictReader(f))
    assert [r["video"] for r in failed] == ["south/broken.mp4"] and "broken.mp4" in failed[0]["error"]


def test_timeline_shades_the_annotated_seconds(tmp_path):
    from scripts.data.framegt import Annotation
    scores = VideoScores(video_score=0.9, starts=np.array([0.0, 1.0, 2.0]), ends=np.array([1.0, 2.0, 3.0]),
                         scores=np.array([0.1, 0.8, 0.2]), fps=25.0, num_frames=75, kind="one point per snippet")
    seconds = gt_seconds(Annotation(name="v", cls="Abuse", intervals=((25, 49),)), 25.0)
    assert seconds == [(1.0, 2.0)]  # frames 25-49 inclusive at 25 fps
    fig = timeline_figure(scores, 0.5, "v", seconds)
    spans = [p for p in fig.axes[0].patches if p.get_label() == "annotated"]
    assert len(spans) == 1 and spans[0].get_x() == 1.0 and spans[0].get_width() == 1.0


@pytest.mark.slow  # a second interpreter: make test-slow
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
    assert proc.returncode == 2 and "give one of --test_list" in proc.stderr


def test_top_intervals_merge_runs():
    s = VideoScores(video_score=0.9, starts=np.arange(6) * 0.5, ends=np.arange(1, 7) * 0.5,
                    scores=np.array([0.1, 0.7, 0.8, 0.2, 0.95, 0.1]), fps=30.0, num_frames=90, kind="snippet")
    assert top_intervals(s, 0.5) == [(2.0, 2.5, 0.95), (0.5, 1.5, pytest.approx(0.8))]
    assert s.frames()[-1] == (75, 89) and s.at(1.2) == pytest.approx(0.8) and s.at(5.0) is None


@pytest.mark.parametrize("layout, shape", [("map", [192, 4, 5, 5]), ("sequence", [192, 32, 1, 1])])
def test_a_video_shorter_than_a_clip_says_it_was_padded_and_ends_where_it_ends(tmp_path, layout, shape):
    """Issue #31 item 7: a 1-frame, 0.1 s video: every clip frame repeats it, so the sidecar says padded
    (x3d_xs takes 4 frames: 3 repeats), and the curve's one point ends at 0.1 s, not at the window's 1.6 s."""
    video = write_video(tmp_path / "one.avi", 1, size=(96, 72), fps=10.0)
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", shape, layout == "sequence")
    proc = run_script("test.py", "--video", video, "--checkpoint", ckpt, "--backbone", "x3d_xs", "--random_weights",
                      "--out_dir", tmp_path / "out", "--no_overlay", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    _, rows = read_scores(tmp_path / "out" / "one")
    assert [(float(r["start_s"]), float(r["end_s"])) for r in rows] == [(0.0, 0.1)]
    done = run_script("feature_extractor.py", "--video", video, "--out_dir", tmp_path / "f", "--backbone", "x3d_xs",
                      "--random_weights", "--no_progress")
    assert done.returncode == 0, done.stderr
    sidecar = json.loads((tmp_path / "f/one.json").read_text())
    assert sidecar["padded"] is True and sidecar["padded_frames"] == 3 and sidecar["num_clips"] == 1


def test_an_out_dir_inside_the_video_root_is_not_scored_on_a_rerun(tmp_path):
    """Issue #31 (found probing): a rerun scored the first run's overlay.mp4 files as videos of the root."""
    root = tmp_path / "cams"
    write_video(root / "a" / "v.avi", 40, size=(96, 72), fps=10.0)
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", [192, 4, 5, 5], False)
    for _ in range(2):
        proc = run_script("test.py", "--video_root", root, "--out_dir", root / "out", "--checkpoint", ckpt,
                          "--backbone", "x3d_xs", "--random_weights", "--no_progress", "--no_plots")
        assert proc.returncode == 0, proc.stderr
    assert "skipped 1 video(s) under --out_dir" in proc.stdout and "scored 1 of 1 videos" in proc.stdout
    assert [r["video"] for r in csv.DictReader((root / "out" / "summary.csv").open())] == ["a/v.avi"]
