"""Videos -> X3D feature files: the work behind feature_extractor.py, reusable by other scripts.

    from scripts.extraction.x3d import load_backbone
    from scripts.extraction.extraction import ExtractSettings, extract_video
    backbone = load_backbone("x3d_l")  # Kinetics-400 weights from torch's hub cache (downloaded once)
    settings = ExtractSettings.for_backbone("x3d_l")  # the shared features' preprocessing
    features, sidecar = extract_video("Arson011_x264.mp4", backbone, settings, device="cpu")  # [192, 16, 10, 10]

The defaults reproduce how the shared UCF-Crime features were made (data/published/README.md): X3D-L,
short side 320, 320 x 320 centre crop, whole windows of 80 frames with 16 spread evenly over each
(`clip_sampling="uniform"`), mean 0.45 / std 0.225, the element-wise maximum over all clips.

Each video is decoded in a background thread (scripts/extraction/video.py) into batches of clips while the model
runs on the previous batch; a bounded queue keeps memory flat. Many videos: `extract_all` skips the
finished ones, records failures and shards the list: scripts/extraction/batch.py.
"""
from __future__ import annotations

import contextlib
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from scripts.core.errors import MateError
from scripts.core.producer import END, Producer
from scripts.data.feature_settings import CLOCK_FPS
from scripts.extraction.clips import ClipAssembler, ClipSpec, preprocess_frame, spatial_crops
from scripts.extraction.video import VideoReader, check_complete
from scripts.extraction.x3d import X3DFeatures, get_preset



@dataclass(frozen=True)
class ExtractSettings:
    """How a video becomes clips and batches; `for_backbone` fills the preset's values.

    clip_sampling "uniform" is the published extractor's rule, "strided" pads the last clip so every
    frame is in one (scripts/extraction/clips.py's docstring has both).
    """

    num_frames: int
    sampling_rate: int
    stride: int
    crop_size: int
    side_size: int
    clip_sampling: str = "uniform"
    crops: int = 1
    batch_size: int = 1  # clips per forward pass; scripts/extraction/batching.py chooses it per device
    clip_workers: int = 1  # forward passes side by side (CPU), results taken in order
    decoder: str = "cv2"
    decoder_threads: int = 1
    dtype: str = "float32"
    allow_truncated: bool = False

    @classmethod
    def for_backbone(cls, name: str, **overrides) -> "ExtractSettings":
        """The preset's clip sampling and sizes; an override of None keeps the preset's value."""
        p = get_preset(name)
        values = dict(num_frames=p.num_frames, sampling_rate=p.sampling_rate, crop_size=p.crop_size,
                      side_size=p.side_size)
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault("stride", values["num_frames"] * values["sampling_rate"])  # non-overlapping
        settings = cls(**values)
        settings.check()
        return settings

    @property
    def spec(self) -> ClipSpec:
        return ClipSpec(self.num_frames, self.sampling_rate, self.stride, self.clip_sampling)

    def check(self) -> None:
        ClipSpec(self.num_frames, self.sampling_rate, self.stride, self.clip_sampling)  # counts and rule
        if self.crops not in (1, 3, 10):
            raise MateError(f"--crops: {self.crops} is not 1, 3 or 10")
        if self.crop_size < 32:
            raise MateError(f"--crop_size: {self.crop_size} is below X3D's total stride of 32 pixels")
        if self.side_size < self.crop_size:
            raise MateError(f"--side_size {self.side_size} is smaller than --crop_size {self.crop_size}")
        if self.batch_size < 1:
            raise MateError(f"--batch_size: must be at least 1, got {self.batch_size}")
        if self.clip_workers < 1:
            raise MateError(f"--clip_workers: must be at least 1, got {self.clip_workers}")
        if self.decoder_threads < 0:
            raise MateError(f"--decoder_threads: must be 0 (FFmpeg's choice) or more, got {self.decoder_threads}")
        if self.dtype not in ("float32", "float16"):
            raise MateError(f"--dtype: '{self.dtype}' is not float32 or float16")
        clip = 4 * 3 * self.num_frames * self.crop_size ** 2 * self.crops  # float32 bytes of one clip's crops
        memory = physical_memory()
        if memory and clip > memory / 8:  # the network's activations are many times the input
            raise MateError(f"--num_frames {self.num_frames} x --crop_size {self.crop_size} x --crops {self.crops}: "
                            f"one clip alone is {clip / 2**30:.1f} GiB, more than an eighth of this machine's "
                            f"{memory / 2**30:.1f} GiB of memory")


def physical_memory() -> int | None:
    """The machine's memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


# ------------------------------------------------------------------------------------- decoding thread
class ClipStream(Producer):
    """Decodes one video in a background thread into batches of clips [B, 3, T, h, w].

    The queue holds at most `prefetch` batches, so decoding runs ahead of the model by that much and no
    further. `info` gets the video's facts (fps, frames, padding) once decoding has finished. For CUDA,
    batches are float16 (autocast casts the first convolution's input to float16 anyway, so the numbers
    are the same and the copy is half as long) in pinned memory (the copy overlaps compute).
    """

    def __init__(self, path: str | Path, settings: ExtractSettings, *, for_cuda: bool = False,
                 prefetch: int = 2):
        self.path, self.settings, self.for_cuda = Path(path), settings, for_cuda
        super().__init__(prefetch, name=f"decode {self.path.name}")
        self.info: dict = {}

    def produce(self) -> None:
        s = self.settings
        with VideoReader(self.path, s.decoder, s.decoder_threads) as reader:
            self.info.update(fps=reader.fps, declared_frames=reader.declared_frames, duration=reader.duration)
            center = s.crop_size if s.crops == 1 else None  # crop single-view frames at once: less to keep
            assembler = ClipAssembler(s.spec, partial(preprocess_frame, side_size=s.side_size, crop_size=center),
                                      duration=reader.duration, fps=reader.fps)
            batch: list[torch.Tensor] = []
            for frame, time in reader.timed_frames():
                for clip in assembler.push(frame, time):
                    batch = self._add(batch, clip)
                if self.stopping.is_set():
                    return
            truncated = check_complete(self.path, assembler.num_frames, reader.declared_frames,
                                       s.allow_truncated, reader.decode_error)
            for clip in assembler.finish():
                batch = self._add(batch, clip)
            if batch:
                self.put(self._stack(batch))
            self.info.update(num_frames=assembler.num_frames, num_clips=assembler.next_clip,
                             padded_frames=assembler.padded_frames, dropped_frames=assembler.dropped_frames,
                             truncated=truncated,
                             peak_buffer=assembler.peak_buffer)

    def _add(self, batch: list[torch.Tensor], clip: torch.Tensor) -> list[torch.Tensor]:
        batch.append(clip)
        if len(batch) < self.settings.batch_size:
            return batch
        self.put(self._stack(batch))
        return []

    def _stack(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x = torch.stack(batch)  # [B, 3, T, h, w]
        return x.half().pin_memory() if self.for_cuda else x

    def batches(self) -> Iterator[torch.Tensor]:
        while True:
            item = self.queue.get()
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


# ------------------------------------------------------------------------------------------ one video
def precision(device: torch.device) -> str:
    """How the backbone computes on `device`, as the sidecar records it: float16 autocast on CUDA (twice
    as fast; the features differ from the CPU's float32 ones by about 1e-3 relative), float32 elsewhere."""
    return "float16-autocast" if device.type == "cuda" else "float32"


def _autocast(device: torch.device):
    if precision(device) == "float16-autocast":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def forward_clips(backbone: X3DFeatures, batch: torch.Tensor, settings: ExtractSettings,
                  device: torch.device) -> torch.Tensor:
    """One batch [B, 3, T, h, w] through the backbone: per-clip, per-crop features [B, K, ...] in float32.
    Inference mode and autocast are entered here, in the thread that runs it (both are thread-local)."""
    K = settings.crops
    with torch.inference_mode(), _autocast(device):
        x = spatial_crops(batch.to(device, non_blocking=True), settings.crop_size, K)  # [B, K, 3, T, c, c]
        y = backbone(x.flatten(0, 1)).float()  # map: [B*K, 192, T, h, w]; sequence: [B*K, D]
    return y.view(batch.shape[0], K, *y.shape[1:])


def clip_features(stream: ClipStream, backbone: X3DFeatures, settings: ExtractSettings,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """Each batch's features [B, K, ...], in the video's order, computed by `settings.clip_workers`
    forward passes side by side (scripts/extraction/batching.py); at most that many batches are in flight."""
    if settings.clip_workers == 1:
        for batch in stream.batches():
            yield forward_clips(backbone, batch, settings, device)
        return
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(settings.clip_workers, thread_name_prefix="clips",
                              initializer=torch.set_num_threads, initargs=(threads,))
    flight: deque[Future] = deque()
    try:
        for batch in stream.batches():
            flight.append(pool.submit(forward_clips, backbone, batch, settings, device))
            if len(flight) == settings.clip_workers:
                yield flight.popleft().result()
        while flight:
            yield flight.popleft().result()
    finally:
        for future in flight:
            future.cancel()
        pool.shutdown(wait=True)


def features_from_stream(stream: ClipStream, backbone: X3DFeatures, settings: ExtractSettings,
                         device: torch.device, bar: tqdm | None = None,
                         on_clips: Callable[[torch.Tensor], None] | None = None) -> tuple[np.ndarray, dict]:
    """Run the backbone on a stream's batches: map -> max over clips and crops; sequence -> per clip.

    `on_clips`, if given, sees every batch's per-clip features [B, K, ...] in order before pooling (test.py
    --video scores each clip's map with the detector this way, without keeping them all); it runs
    outside autocast, so a detector called there computes in float32 on CUDA too.
    """
    K, device = settings.crops, torch.device(device)
    pooled, rows = None, []
    with torch.inference_mode():
        for y in clip_features(stream, backbone, settings, device):
            if on_clips is not None:
                on_clips(y)
            if backbone.layout == "map":
                top = y.amax(dim=(0, 1))  # [192, T, h, w]
                pooled = top if pooled is None else torch.maximum(pooled, top)
            else:
                rows.append(y.cpu())
            if bar is not None:
                if bar.total is None and stream.info.get("duration"):
                    bar.total = settings.spec.clip_count(stream.info["duration"])
                bar.update(y.shape[0])
    if backbone.layout == "map":
        features = pooled.cpu().numpy()  # [192, T, h, w]
    else:
        features = torch.cat(rows).numpy()  # [n_clips, K, D]
        features = features[:, 0] if K == 1 else features  # [n_clips, D]
    features = features.astype(settings.dtype)
    return features, make_sidecar(stream, backbone, settings, features, device)


def make_sidecar(stream: ClipStream, backbone: X3DFeatures, settings: ExtractSettings,
                 features: np.ndarray, device: torch.device = torch.device("cpu")) -> dict:
    """The `<name>.json` record of how a feature file was made (framegt.py reads stride, num_frames)."""
    info = stream.info
    sidecar = {
        "video": stream.path.name, "fps": info["fps"], "num_frames": info["num_frames"],
        "frames_per_clip": settings.num_frames, "sampling_rate": settings.sampling_rate,
        "stride": settings.stride, "clip_sampling": settings.clip_sampling, "backbone": backbone.name,
        "weights": backbone.weights, "layout": backbone.layout, "shape": list(features.shape),
        "crops": settings.crops, "padded": info["padded_frames"] > 0, "padded_frames": info["padded_frames"],
        "dropped_frames": info["dropped_frames"],
        "decoder": settings.decoder, "num_clips": info["num_clips"], "crop_size": settings.crop_size,
        "side_size": settings.side_size, "declared_frames": info["declared_frames"],
        "dtype": settings.dtype, "device": device.type, "precision": precision(device),
        # the clock (scripts/extraction/clips.py): windows and strides in seconds, whatever the video's frame rate
        "clock_fps": CLOCK_FPS, "window_s": settings.spec.window_s, "stride_s": settings.spec.stride_s,
        "duration_s": None if info["duration"] is None else float(info["duration"]),
    }
    if backbone.layout == "sequence":
        sidecar["sequence_feature"] = backbone.sequence_feature
    if info["truncated"]:
        sidecar["truncated"] = True
    return sidecar


def extract_video(path: str | Path, backbone: X3DFeatures, settings: ExtractSettings,
                  device: torch.device | str = "cpu", progress: bool = False,
                  on_clips: Callable[[torch.Tensor], None] | None = None) -> tuple[np.ndarray, dict]:
    """Features of one video and its sidecar dict; a bad video raises MateError naming the file.

    `backbone` must already be on `device` (load_backbone(...).to(device)).
    """
    device = torch.device(device)
    stream = ClipStream(path, settings, for_cuda=device.type == "cuda").start()
    try:
        with tqdm(desc=Path(path).name, unit="clip", disable=not progress, leave=False) as bar:
            return features_from_stream(stream, backbone, settings, device, bar, on_clips)
    finally:
        stream.close()
