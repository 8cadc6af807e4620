"""Scoring your own video (test.py --video) on the CPU: seconds per minute of video and peak memory; and
the repo's extractor side by side with the published pipeline.

    python benchmarks/bench_video.py --backbone x3d_xs --minutes 1
    python benchmarks/bench_video.py --backbone x3d_xs --minutes 10     # peak memory must not grow with length
    python benchmarks/bench_video.py --backbone x3d_l --minutes 1 --threads 2
    python benchmarks/bench_video.py --side_by_side --threads 1 2 --repeats 2 [--also_one_worker]

--side_by_side: the published extraction pipeline (benchmarks/published_pipeline.py: the published
feat_extractor.py's pytorchvideo transforms, clip sampler and max over clips, run in the scratch venv that
benchmarks/published_venv.py builds once) and this repo's feature_extractor.py path (extract_video with
the batch and workers it chooses for the CPU), X3D-L with the same seeded random weights (a file the
published side writes and the repo's side loads as --backbone_checkpoint), on the same looped video, each
in its own process, interleaved (published, repo, published, repo, ...) at every thread count. Prints the
seconds of each extraction loop per minute of video (best of --repeats), the ratio, and the max
|difference| of the two [192, 16, 10, 10] maps.

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
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from scripts.core.memory import keep_freed_memory  # noqa: E402
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


def repo_extraction(video: Path, weights: Path, out: Path, threads: int, batch_size: int | None = None,
                    workers: int | None = None) -> dict:
    """This repo's extraction of `video` as feature_extractor.py runs it on the CPU with `threads`
    threads (its clip batch and workers chosen as there): the loop's seconds and the clips."""
    import numpy as np

    from scripts.extraction.batching import choose_batching
    from scripts.extraction.extraction import ExtractSettings, extract_video
    from scripts.extraction.x3d import load_backbone

    cpu = torch.device("cpu")
    batching = choose_batching(cpu, batch_size=batch_size, workers=workers, threads=threads)
    torch.set_num_threads(batching.threads_per_worker)
    net = load_backbone("x3d_l", checkpoint=weights)
    settings = ExtractSettings.for_backbone("x3d_l", batch_size=batching.batch_size, clip_workers=batching.workers)
    start = time.perf_counter()
    features, sidecar = extract_video(video, net, settings, device=cpu)
    seconds = time.perf_counter() - start
    np.save(out, features)
    return {"seconds": seconds, "clips": sidecar["num_clips"], "said": batching.said}


def side_by_side(args) -> None:
    import json
    import subprocess

    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from published_venv import build

    python = build()
    sides = ["published", "repo"] + (["repo, 1 worker"] if args.also_one_worker else [])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = looped_video(tmp / "video.mp4", args.minutes * 60)
        weights = tmp / "x3d_l_random.pt"
        best: dict[tuple[str, int], float] = {}
        outputs: dict[str, Path] = {}
        said = {}
        for threads in args.threads:
            for round_ in range(args.repeats):
                for side in sides:
                    out = tmp / f"{side.replace(', ', '_').replace(' ', '_')}.npy"
                    if side == "published":
                        cmd = [str(python), str(ROOT / "benchmarks" / "published_pipeline.py"), str(video),
                               str(weights), str(out), "--threads", str(threads)]
                    else:
                        cmd = [sys.executable, str(Path(__file__).resolve()), "--repo_run", str(video), str(weights),
                               str(out), "--threads", str(threads)] + (["--one_worker"] if "1 worker" in side else [])
                    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
                    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
                    if done.returncode:
                        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    said[(side, threads)] = result.get("said", "pytorchvideo, one clip at a time")
                    best[(side, threads)] = min(best.get((side, threads), float("inf")), result["seconds"])
                    outputs[side] = out
                    print(f"  {threads} thread(s), round {round_ + 1}, {side}: {result['seconds']:.1f} s "
                          f"({result['clips']} clips)", flush=True)
        a = np.load(outputs["published"])
        diffs = {side: float(np.abs(a - np.load(outputs[side])).max()) for side in sides[1:]}
    minutes = args.minutes
    print(f"\nX3D-L, {minutes:g} min of 320x240 video at 10 fps, best of {args.repeats}, seconds per minute of video:")
    columns = ["threads", *sides, "published / repo"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for threads in args.threads:
        pub = best[("published", threads)] / minutes
        cells = [f"{best[(side, threads)] / minutes:.1f} s" for side in sides]
        print(f"| {threads} | " + " | ".join(cells) + f" | {pub / (best[('repo', threads)] / minutes):.2f}x |")
    for threads in args.threads:
        for side in sides[1:]:
            print(f"{side}, {threads} thread(s): {said[(side, threads)]}")
    print("max |difference| from the published features: "
          + ", ".join(f"{side} {d:.2e}" for side, d in diffs.items()) + f" (shape {list(a.shape)})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser("bench_video.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=tuple(PRESETS), default="x3d_xs", help="X3D preset (default: x3d_xs)")
    parser.add_argument("--minutes", type=float, default=1.0, help="length of the looped video (default: 1)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="torch threads; --side_by_side measures each count given (default: 1)")
    parser.add_argument("--side_by_side", action="store_true",
                        help="the published pipeline against this repo's extractor, X3D-L, same weights and video")
    parser.add_argument("--repeats", type=int, default=1, help="--side_by_side: rounds per thread count (default: 1)")
    parser.add_argument("--also_one_worker", action="store_true",
                        help="--side_by_side: also the repo with one worker on all the threads (the default "
                             "runs two workers of half the threads each from 2 threads on)")
    parser.add_argument("--repo_run", nargs=3, type=Path, metavar=("VIDEO", "WEIGHTS", "OUT"),
                        help="internal: one run of the repo's side, printing a JSON line")
    parser.add_argument("--one_worker", action="store_true", help="internal: --repo_run with one worker")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as scripts/core/cli.py does for feature_extractor.py and test.py (X3D-L: 1.2x)
    if args.repo_run:
        import json

        print(json.dumps(repo_extraction(*args.repo_run, threads=args.threads[0],
                                         workers=1 if args.one_worker else None)))
        return
    if args.side_by_side:
        side_by_side(args)
        return
    args.threads = args.threads[0]
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
