"""Scoring your own video (test.py --video) on the CPU: seconds per minute of video and peak memory.

    python benchmarks/bench_video.py --backbone x3d_xs --minutes 1
    python benchmarks/bench_video.py --backbone x3d_xs --minutes 10     # peak memory must not grow with length
    python benchmarks/bench_video.py --backbone x3d_l --minutes 1

The input is the repo's real clip (tests/data/vtest_clip.avi, 320x240, 10 fps) looped forwards and
backwards to --minutes, written once as MP4 into a temp folder. One run of what test.py --video does:
extraction and scoring (random X3D weights and an untrained map checkpoint of the backbone's shape: speed
does not depend on weights), timeline, and the overlay in a second decoding pass. Prints seconds per
minute of video for the scoring pass and the overlay pass, and the process's peak resident memory
(ru_maxrss), which includes torch and the libraries (about 0.4 GB before anything runs).
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from scripts.models.checkpoint import save_checkpoint  # noqa: E402
from scripts.evaluation.demo_video import looped_video  # noqa: E402
from scripts.model import build_model, config_for_variant  # noqa: E402
from scripts.evaluation.single_video import VideoScorer  # noqa: E402
from scripts.evaluation.video_outputs import plot_timeline, write_overlay  # noqa: E402
from scripts.extraction.x3d import PRESETS  # noqa: E402

MAP_SHAPES = {"x3d_xs": [192, 4, 5, 5], "x3d_s": [192, 13, 5, 5], "x3d_m": [192, 16, 8, 8], "x3d_l": [192, 16, 10, 10]}


def untrained_checkpoint(path: Path, backbone: str) -> Path:
    torch.manual_seed(0)
    shape = MAP_SHAPES[backbone]
    cfg = config_for_variant("fast", in_channels=shape[0])
    save_checkpoint(path, {"model": build_model(cfg).state_dict(), "model_config": dataclasses.asdict(cfg),
                           "options": {}, "feature": {"shape": shape, "sequence": False, "crop_mode": "mean"},
                           "epoch": 0, "metrics": {}})
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser("bench_video.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=tuple(PRESETS), default="x3d_xs", help="X3D preset (default: x3d_xs)")
    parser.add_argument("--minutes", type=float, default=1.0, help="length of the looped video (default: 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = looped_video(tmp / "long.mp4", args.minutes * 60)
        scorer = VideoScorer(untrained_checkpoint(tmp / "ckpt.pth", args.backbone), backbone=args.backbone,
                             random_weights=True)
        start = time.perf_counter()
        scores = scorer.score(video, progress=True)
        scored = time.perf_counter() - start
        plot_timeline(scores, tmp / "timeline.png", scorer.threshold, "bench")
        start = time.perf_counter()
        write_overlay(video, scores, tmp / "overlay.mp4", scorer.threshold)
        overlay = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB -> GiB
    minutes = scores.duration / 60
    print(f"{args.backbone}, {minutes:.1f} min of 320x240 video at {scores.fps:g} fps, {args.threads} thread(s): "
          f"scoring {scored / minutes:.1f} s per minute of video, overlay {overlay / minutes:.1f} s per minute, "
          f"{len(scores.scores)} points, peak memory {peak:.2f} GiB")


if __name__ == "__main__":
    main()
