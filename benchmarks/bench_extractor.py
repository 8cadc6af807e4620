"""Extractor throughput: end-to-end clips/s (decode + preprocess + forward) against the bare forward pass.

    python benchmarks/bench_extractor.py                 # x3d_xs on the CPU, the test clip looped to 48 clips
    python benchmarks/bench_extractor.py --threads 1     # leave the other core(s) to the decoder thread
    python benchmarks/bench_extractor.py --backbone x3d_l --device cuda --batch_size 16
    python benchmarks/bench_extractor.py --video some_video.mp4 --decoder av

The bare rate runs the backbone on one batch of the video's own preprocessed clips, already on the
device, as many times as the video has batches; the end-to-end rate extracts the whole video with
extract_video (decode, preprocess, crops, copy, forward, pooling). Both use the same backbone, device,
batch size and crops, after a warm-up; the best of --repeats runs is reported. Target (issue 4): the
end-to-end rate is at least 80% of the bare rate for x3d_xs on the CPU. Random weights: speed does not
depend on them.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from scripts.core.devices import resolve_device  # noqa: E402
from scripts.extraction.extraction import ClipStream, ExtractSettings, extract_video  # noqa: E402
from scripts.extraction.clips import spatial_crops  # noqa: E402
from scripts.extraction.video import VideoReader  # noqa: E402

SOURCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "vtest_clip.avi"
from scripts.extraction.x3d import PRESETS, load_backbone  # noqa: E402


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("bench_extractor.py", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=tuple(PRESETS), default="x3d_xs", help="X3D preset (default: x3d_xs)")
    parser.add_argument("--layout", choices=("map", "sequence"), default="map", help="feature layout (default: map)")
    parser.add_argument("--crops", type=int, choices=(1, 3, 10), default=1, help="crops per clip (default: 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:<i> or auto (default: cpu)")
    parser.add_argument("--batch_size", type=int, default=8, help="clips per forward pass (default: 8)")
    parser.add_argument("--clips", type=int, default=48,
                        help="clips in the generated video (its length is clips x stride frames) (default: 48)")
    parser.add_argument("--video", type=Path, default=None,
                        help="benchmark this video instead of the test clip looped into a 320x240 30-fps "
                             "mp4 (default: none)")
    parser.add_argument("--decoder", choices=("cv2", "av"), default="cv2", help="video decoder (default: cv2)")
    parser.add_argument("--decoder_threads", type=int, default=1,
                        help="FFmpeg threads per decoder; 0 = FFmpeg's choice (default: 1)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of each, alternating; the best counts (default: 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    return parser


def make_video(path: Path, num_frames: int, fps: float = 30.0) -> Path:
    """A UCF-Crime-like video: the real 320x240 test clip played back and forth to the wanted length."""
    import cv2

    frames = list(VideoReader(SOURCE).frames())
    loop = frames + frames[-2:0:-1]  # forth and back, so there is no cut
    H, W, _ = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    for i in range(num_frames):
        writer.write(loop[i % len(loop)])
    writer.release()
    return path


def real_clips(video: Path, settings: ExtractSettings, device: torch.device) -> torch.Tensor:
    """One batch of the video's own preprocessed, cropped clips on the device (the bare pass's input)."""
    stream = ClipStream(video, settings).start()
    try:
        batch = next(stream.batches())
    finally:
        stream.close()
    x = spatial_crops(batch.to(device), settings.crop_size, settings.crops)  # [B, K, 3, T, c, c]
    return x.flatten(0, 1)


def time_bare(backbone, x: torch.Tensor, device: torch.device, num_batches: int) -> float:
    """Seconds for num_batches forward passes on clips already preprocessed, cropped and on the device."""
    autocast = (torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda"
                else contextlib.nullcontext())
    with torch.inference_mode(), autocast:
        _sync(device)
        start = time.perf_counter()
        for _ in range(num_batches):
            backbone(x).float().cpu()
        _sync(device)
    return time.perf_counter() - start


def time_end_to_end(video: Path, backbone, settings: ExtractSettings, device: torch.device) -> tuple[float, int]:
    _sync(device)
    start = time.perf_counter()
    _, sidecar = extract_video(video, backbone, settings, device)
    _sync(device)
    return time.perf_counter() - start, sidecar["num_clips"]


def rates(video: Path, backbone, settings: ExtractSettings, device: torch.device,
          repeats: int) -> tuple[float, float, int]:
    """Best clips/s of each; the runs alternate so that both see the same machine load."""
    x = real_clips(video, settings, device)
    per_batch = x.shape[0] // settings.crops  # clips in the bare batch
    time_end_to_end(video, backbone, settings, device)  # warm-up: codec, allocator, cuDNN
    time_bare(backbone, x, device, 1)
    e2e = bare = 0.0
    for _ in range(repeats):
        seconds, clips = time_end_to_end(video, backbone, settings, device)
        e2e = max(e2e, clips / seconds)
        batches = math.ceil(clips / per_batch)
        bare = max(bare, batches * per_batch / time_bare(backbone, x, device, batches))
    return e2e, bare, clips


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    settings = ExtractSettings.for_backbone(args.backbone, batch_size=args.batch_size, crops=args.crops,
                                            decoder=args.decoder, decoder_threads=args.decoder_threads)
    torch.manual_seed(0)
    backbone = load_backbone(args.backbone, random_weights=True, layout=args.layout).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or make_video(Path(tmp) / "bench.mp4", args.clips * settings.stride)
        e2e, bare, clips = rates(video, backbone, settings, device, args.repeats)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.backbone} {args.layout} crops={args.crops} batch={args.batch_size} on {device} ({name}), "
          f"{clips} clips of {settings.num_frames}x{settings.sampling_rate} frames at {settings.crop_size}px")
    print(f"bare forward : {bare:8.2f} clips/s")
    print(f"end-to-end   : {e2e:8.2f} clips/s  ({100 * e2e / bare:.0f}% of bare; target >= 80% for x3d_xs on CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
