"""A longer real video for `make demo-video` and benchmarks/bench_video.py: the repo's real clip
(tests/data/vtest_clip.avi, 10 s of a street at 320x240, 10 fps) played forwards then backwards until the
wanted length, so a curve over time has many points.

    python -m scripts.evaluation.demo_video runs/demo_video/street.mp4 --seconds 40
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.core.errors import MateError
from scripts.core.fileio import atomic_path

CLIP = Path(__file__).resolve().parents[2] / "tests" / "data" / "vtest_clip.avi"


def looped_video(path: Path, seconds: float, source: Path = CLIP) -> Path:
    """Write `seconds` of `source` looped forwards and backwards to `path` (MP4, the source's size and fps)."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise MateError(f"{source}: no frame could be decoded")
    cycle = frames + frames[::-1]
    H, W = frames[0].shape[:2]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
        for i in range(int(round(seconds * fps))):
            writer.write(cycle[i % len(cycle)])
        writer.release()
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser("python -m scripts.evaluation.demo_video", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the MP4 to write")
    parser.add_argument("--seconds", type=float, default=40.0, help="length (default: 40)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"wrote {looped_video(args.out, args.seconds)}")
    return 0


if __name__ == "__main__":
    from scripts.core.cli import run

    run(main)
