"""A longer real video for `make demo-video` and benchmarks/bench_video.py: the repo's real clip
(tests/data/vtest_clip.avi, 10 s of a street at 320x240, 10 fps) played forwards then backwards until the
wanted length, so a curve over time has many points.

    python -m scripts.evaluation.demo_video runs/demo_video/street.mp4 --seconds 40
"""
from __future__ import annotations

import argparse
from fractions import Fraction
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


def transport_stream(path: Path, seconds: float, fps: float | None = None, source: Path = CLIP,
                     codec: str = "mpeg2video") -> Path:
    """`seconds` of `source` looped as looped_video does, as an MPEG-TS (what a camera or `ffmpeg -f mpegts`
    sends) at `fps` frames per second (default: the source's; another rate shows the frame due at each
    time), for test.py --stream."""
    import av
    import cv2

    cap = cv2.VideoCapture(str(source))
    rate = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    if not frames:
        raise MateError(f"{source}: no frame could be decoded")
    cycle = frames + frames[::-1]
    fps = fps or rate
    H, W = frames[0].shape[:2]
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mpegts") as out:
            stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            for i in range(int(round(seconds * fps))):
                picture = cycle[int(i / fps * rate + 1e-9) % len(cycle)]
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path


def send_udp(path: Path, port: int, *, seconds: float, host: str = "127.0.0.1", stop=None) -> int:
    """Play the MPEG-TS `path` (`seconds` long) to udp://host:port in real time: 7 TS packets (1316 bytes)
    per datagram, paced evenly over `seconds`, as a camera streams. Loopback only by default. Returns the
    datagrams sent; `stop` (a threading.Event) ends it early."""
    import socket
    import time

    data = Path(path).read_bytes()
    chunk = 188 * 7
    count = -(-len(data) // chunk)
    gap = seconds / max(count, 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic()
    try:
        for i in range(count):
            if stop is not None and stop.is_set():
                return i
            delay = start + i * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(data[i * chunk:(i + 1) * chunk], (host, port))
    finally:
        sock.close()
    return count


def main(argv=None) -> int:
    parser = OneLineParser("python -m scripts.evaluation.demo_video", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the MP4 to write")
    parser.add_argument("--seconds", type=finite_float, default=40.0, help="length (default: 40)")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"wrote {looped_video(args.out, args.seconds)}")
    return 0


if __name__ == "__main__":
    from scripts.core.cli import OneLineParser, finite_float, run

    run(main)
