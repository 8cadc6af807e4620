"""Live scoring in real time (test.py --stream): does the CPU keep up with a camera?

    python benchmarks/bench_stream.py                                   # x3d_xs and x3d_l, 1 and 2 threads
    python benchmarks/bench_stream.py --backbones x3d_l --threads 2 --seconds 120

The repo's real clip (tests/data/vtest_clip.avi, 320x240) looped to --seconds and re-encoded at 25 fps as
an MPEG-TS is sent in real time to a loopback UDP port (127.0.0.1 only; scripts/evaluation/demo_video.py
send_udp), while `test.py --stream udp://127.0.0.1:PORT` scores it (random X3D weights and an untrained
map checkpoint of the backbone's shape, default sliding window: speed does not depend on weights). Per
backbone and thread count it prints: the real-time factor (the scorer's busy seconds, backbone +
detector + outputs, per second of stream; below 1 keeps up), the latency from the arrival of the frame
that completes a point's last clip to its JSON line (median and max), the frames dropped, and the
scoring process's peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scripts.evaluation.demo_video import send_udp, transport_stream  # noqa: E402
from bench_video import untrained_checkpoint  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(ts: Path, ckpt: Path, backbone: str, threads: int, seconds: float, tmp: Path) -> dict:
    port = free_port()
    events = tmp / f"events_{backbone}_{threads}.jsonl"
    cmd = [sys.executable, str(ROOT / "test.py"), "--stream", f"udp://127.0.0.1:{port}", "--checkpoint", str(ckpt),
           "--backbone", backbone, "--random_weights", "--threads", str(threads), "--stream_timeout", "5",
           "--events", str(events), "--out_dir", str(tmp / f"out_{backbone}_{threads}")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(8.0)  # the model and the backbone load, the socket opens
    sender = threading.Thread(target=send_udp, args=(ts, port), kwargs={"seconds": seconds}, daemon=True)
    sender.start()
    sender.join()
    _, err = proc.communicate(timeout=seconds + 120)
    lines = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
    points = [e for e in lines if e["event"] == "score"]
    end = next((e for e in lines if e["event"] == "end"), None)
    if end is None or not points:
        raise SystemExit(f"{backbone} {threads} thread(s): no points; stderr:\n{err[-2000:]}")
    latency = [p["latency_s"] for p in points]
    return {"backbone": backbone, "threads": threads, "stream_s": end["stream_s"], "compute_s": end["compute_s"],
            "points": len(points), "dropped": end["dropped_frames"], "frames": end["frames"],
            "median_latency": statistics.median(latency), "max_latency": max(latency),
            "peak_gib": end["peak_memory_gib"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser("bench_stream.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["x3d_xs", "x3d_l"], help="(default: x3d_xs x3d_l)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch threads (default: 1 2)")
    parser.add_argument("--seconds", type=float, default=60.0, help="stream length (default: 60)")
    parser.add_argument("--fps", type=float, default=25.0, help="the stream's frame rate (default: 25)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ts = transport_stream(tmp / "street.ts", args.seconds, fps=args.fps)
        for backbone in args.backbones:
            ckpt = untrained_checkpoint(tmp / f"{backbone}.pth", backbone)
            for threads in args.threads:
                row = one_run(ts, ckpt, backbone, threads, args.seconds, tmp)
                rows.append(row)
                print(f"  {backbone}, {threads} thread(s): {row}", flush=True)
    print(f"\n{args.seconds:g} s of 320x240 video at {args.fps:g} fps over loopback UDP, in real time:")
    print("| backbone | threads | real-time factor | latency median / max | frames dropped | points | peak memory |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backbone']} | {r['threads']} | {r['compute_s'] / max(r['stream_s'], 1e-9):.2f} | "
              f"{r['median_latency']:.2f} s / {r['max_latency']:.2f} s | {r['dropped']} of {r['frames']} | "
              f"{r['points']} | {r['peak_gib']:.2f} GiB |")


if __name__ == "__main__":
    main()
