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
finished ones (resume), writes each .npy and its sidecar atomically (`write_outputs`: a kill never leaves
an array beside a record of other settings), and records failures instead of stopping, except on a full
disk; `shard_jobs` splits the list between SLURM array tasks and torchrun ranks, and
scripts/data/feature_folder.py keeps jobs of other settings off a folder while its shards run side by side.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import shutil
import threading
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from scripts.core.devices import torchrun_env
from scripts.core.errors import MateError
from scripts.core.fileio import atomic_path
from scripts.extraction.video import (CLOCK_FPS, ClipAssembler, ClipSpec, VideoReader, check_complete, preprocess_frame,
                           spatial_crops)
from scripts.extraction.x3d import X3DFeatures, get_preset

_END = object()  # the decode thread's last queue item


@dataclass(frozen=True)
class ExtractSettings:
    """How a video becomes clips and batches; `for_backbone` fills the preset's values.

    clip_sampling "uniform" is the published extractor's rule, "strided" pads the last clip so every
    frame is in one (scripts/extraction/video.py's docstring has both).
    """

    num_frames: int
    sampling_rate: int
    stride: int
    crop_size: int
    side_size: int
    clip_sampling: str = "uniform"
    crops: int = 1
    batch_size: int = 8
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
        if self.decoder_threads < 0:
            raise MateError(f"--decoder_threads: must be 0 (FFmpeg's choice) or more, got {self.decoder_threads}")
        if self.dtype not in ("float32", "float16"):
            raise MateError(f"--dtype: '{self.dtype}' is not float32 or float16")


# ------------------------------------------------------------------------------------- decoding thread
class ClipStream:
    """Decodes one video in a background thread into batches of clips [B, 3, T, h, w].

    The queue holds at most `prefetch` batches, so decoding runs ahead of the model by that much and no
    further. `info` gets the video's facts (fps, frames, padding) once decoding has finished. For CUDA,
    batches are float16 (autocast casts the first convolution's input to float16 anyway, so the numbers
    are the same and the copy is half as long) in pinned memory (the copy overlaps compute).
    """

    def __init__(self, path: str | Path, settings: ExtractSettings, *, for_cuda: bool = False,
                 prefetch: int = 2):
        self.path, self.settings, self.for_cuda = Path(path), settings, for_cuda
        self.queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self.info: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"decode {self.path.name}", daemon=True)

    def start(self) -> "ClipStream":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._decode()
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
        else:
            self._put(_END)

    def _decode(self) -> None:
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
                if self._stop.is_set():
                    return
            truncated = check_complete(self.path, assembler.num_frames, reader.declared_frames,
                                       s.allow_truncated, reader.decode_error)
            for clip in assembler.finish():
                batch = self._add(batch, clip)
            if batch:
                self._put(self._stack(batch))
            self.info.update(num_frames=assembler.num_frames, num_clips=assembler.next_clip,
                             padded_frames=assembler.padded_frames, dropped_frames=assembler.dropped_frames,
                             truncated=truncated,
                             peak_buffer=assembler.peak_buffer)

    def _add(self, batch: list[torch.Tensor], clip: torch.Tensor) -> list[torch.Tensor]:
        batch.append(clip)
        if len(batch) < self.settings.batch_size:
            return batch
        self._put(self._stack(batch))
        return []

    def _stack(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x = torch.stack(batch)  # [B, 3, T, h, w]
        return x.half().pin_memory() if self.for_cuda else x

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def batches(self) -> Iterator[torch.Tensor]:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (also mid-video, after a failure) and free what it queued."""
        self._stop.set()
        self._thread.join()
        while not self.queue.empty():
            self.queue.get_nowait()


# ------------------------------------------------------------------------------------------ one video
def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def features_from_stream(stream: ClipStream, backbone: X3DFeatures, settings: ExtractSettings,
                         device: torch.device, bar: tqdm | None = None,
                         on_clips: Callable[[torch.Tensor], None] | None = None) -> tuple[np.ndarray, dict]:
    """Run the backbone on a stream's batches: map -> max over clips and crops; sequence -> per clip.

    `on_clips`, if given, sees every batch's per-clip features [B, K, ...] before pooling (test.py
    --video scores each clip's map with the detector this way, without keeping them all).
    """
    K = settings.crops
    pooled, rows = None, []
    with torch.inference_mode(), _autocast(device):
        for batch in stream.batches():
            B = batch.shape[0]
            x = spatial_crops(batch.to(device, non_blocking=True), settings.crop_size, K)  # [B, K, 3, T, c, c]
            y = backbone(x.flatten(0, 1)).float()  # map: [B*K, 192, T, h, w]; sequence: [B*K, D]
            y = y.view(B, K, *y.shape[1:])
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
                bar.update(B)
    if backbone.layout == "map":
        features = pooled.cpu().numpy()  # [192, T, h, w]
    else:
        features = torch.cat(rows).numpy()  # [n_clips, K, D]
        features = features[:, 0] if K == 1 else features  # [n_clips, D]
    features = features.astype(settings.dtype)
    return features, make_sidecar(stream, backbone, settings, features)


def make_sidecar(stream: ClipStream, backbone: X3DFeatures, settings: ExtractSettings,
                 features: np.ndarray) -> dict:
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
        "dtype": settings.dtype,
        # the clock (scripts/extraction/video.py): windows and strides in seconds, whatever the video's frame rate
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


# ----------------------------------------------------------------------------------------- many videos
@dataclass(frozen=True)
class Job:
    video: Path
    out: Path  # the .npy; the sidecar is out.with_suffix(".json")
    name: str  # the video's path relative to the root, recorded in the sidecar and failures.csv


def plan_jobs(videos: Sequence[Path], out_dir: Path, root: Path | None = None) -> list[Job]:
    """Mirror root/<Class>/<name>.mp4 to out_dir/<Class>/<name>.npy; two videos on one output is an error."""
    jobs, seen = [], {}
    for video in videos:
        rel = video.relative_to(root) if root is not None else Path(video.name)
        out = out_dir / rel.with_suffix(".npy")
        if out in seen:
            raise MateError(f"{video} and {seen[out]} would both be written to {out}; rename one")
        seen[out] = video
        jobs.append(Job(video=video, out=out, name=rel.as_posix()))
    return jobs


def shard_jobs(jobs: Sequence[Job], num_shards: int = 1, shard_id: int = 0,
               env: Mapping[str, str] = os.environ) -> tuple[list[Job], int, int]:
    """This process's share of the sorted list: jobs[i::N] with (i, N) from the flags and torchrun.

    Under torchrun each of the W ranks takes a W-th of its array task's shard, so a SLURM array of
    N tasks with W GPUs each covers the list once: shard i * W + rank of N * W. Returns the share, its
    index and the total number of shards.
    """
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise MateError(f"--shard_id {shard_id} must lie in [0, --num_shards {num_shards})")
    dist = torchrun_env(env)
    if dist is not None:
        rank, world, _ = dist
        shard_id, num_shards = shard_id * world + rank, num_shards * world
    return list(jobs[shard_id::num_shards]), shard_id, num_shards


@dataclass
class Summary:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (video, error)
    truncated: list[str] = field(default_factory=list)  # written, but fewer frames than declared


def settings_record(settings: ExtractSettings, backbone: X3DFeatures) -> dict:
    """What a feature means (scripts/feature_settings.KEYS), as its sidecar records it: the settings an
    existing output must have to count as done, and that a feature folder records (scripts/data/feature_folder.py).
    The weights by their hash, not their path."""
    from scripts.data.feature_settings import KEYS, settings_of

    record = {"backbone": backbone.name, "weights": backbone.weights, "layout": backbone.layout,
              "frames_per_clip": settings.num_frames, "sampling_rate": settings.sampling_rate,
              "stride": settings.stride, "clip_sampling": settings.clip_sampling, "side_size": settings.side_size,
              "crop_size": settings.crop_size, "crops": settings.crops}
    if backbone.layout == "sequence":
        record["sequence_feature"] = backbone.sequence_feature
    assert set(record) <= set(KEYS), f"{sorted(set(record) - set(KEYS))} are not feature_settings.KEYS"
    return settings_of(record)


def _done(job: Job, record: dict) -> bool:
    """True when both outputs exist with the settings `record`; other settings are a failure, not a skip
    (an older sidecar without one of the keys is refused, not assumed to match)."""
    sidecar_path = job.out.with_suffix(".json")
    if not (job.out.is_file() and sidecar_path.is_file()):
        return False
    from scripts.data.feature_settings import KEYS, check_clock, settings_of
    from scripts.data.framegt import read_sidecar

    sidecar = read_sidecar(job.out) or {}
    check_clock(sidecar, job.out)
    old = settings_of(sidecar)
    differ = [f"{k} {old.get(k)} != {record.get(k)}" for k in KEYS if old.get(k) != record.get(k)]
    if differ:
        raise MateError(f"{job.out}: exists with other settings ({', '.join(differ)}); use --overwrite "
                        "or another --out_dir")
    return True


def extract_all(jobs: Sequence[Job], backbone: X3DFeatures, settings: ExtractSettings,
                device: torch.device, *, overwrite: bool = False, workers: int = 0,
                progress: bool = True) -> Summary:
    """Extract every job; a failing video is recorded and the others go on.

    `workers` extra videos are decoded ahead in parallel while the current one runs on the model (one
    decoder thread cannot feed a fast GPU); 0 decodes only the current video, still in the background.
    A write the OS refuses is that video's failure, except a full disk (or quota): then every later video
    would fail the same way, after decoding and running the model for nothing, so the run stops with
    one MateError line; the files written so far are complete and a rerun resumes after them.
    """
    summary, todo, record = Summary(), [], settings_record(settings, backbone)
    for job in jobs:
        try:
            if not overwrite and _done(job, record):
                summary.skipped.append(job.name)
                continue
        except MateError as exc:
            summary.failures.append((job.name, str(exc)))
            continue
        todo.append(job)
    pending: deque[tuple[Job, ClipStream]] = deque()
    upcoming = iter(todo)

    def refill() -> None:
        while len(pending) < workers + 1 and (job := next(upcoming, None)) is not None:
            pending.append((job, ClipStream(job.video, settings, for_cuda=device.type == "cuda").start()))

    overall = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="video", disable=not progress)
    tried = 0
    refill()
    try:
        while pending:
            job, stream = pending.popleft()
            refill()  # the next videos decode while this one runs on the model
            tried += 1
            try:
                with tqdm(desc=job.name, unit="clip", leave=False, disable=not progress) as bar:
                    features, sidecar = features_from_stream(stream, backbone, settings, device, bar)
            except Exception as exc:  # a bad video must not stop the other 1,899
                summary.failures.append((job.name, _one_line(exc)))
            else:
                sidecar["video"] = job.name
                _save(job, features, sidecar, summary, untried=len(todo) - tried)
            finally:
                stream.close()
            overall.update(1)
    finally:  # also on Ctrl-C: stop the decoders that run ahead
        for _, stream in pending:
            stream.close()
        overall.close()
    return summary


def _save(job: Job, features: np.ndarray, sidecar: dict, summary: Summary, untried: int) -> None:
    """Write one video's outputs into `summary`; a full disk stops the run (extract_all)."""
    try:
        write_outputs(job.out, features, sidecar)
    except MateError as exc:
        if disk_full(exc, job.out):
            raise MateError(f"{_one_line(exc)}; stopped after {len(summary.written)} video(s) written this run, "
                            f"{untried} not tried (they would fail alike); run again to resume") from None
        summary.failures.append((job.name, _one_line(exc)))
        return
    except Exception as exc:
        summary.failures.append((job.name, _one_line(exc)))
        return
    summary.written.append(job.name)
    if sidecar.get("truncated"):
        summary.truncated.append(job.name)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, MateError) else f"{type(exc).__name__}: {text}"


def write_outputs(out: Path, features: np.ndarray, sidecar: dict) -> None:
    """The .npy and its sidecar, which marks it complete: both written to temp files first, so a write
    that fails (a full disk) leaves the previous pair as it was; then the old sidecar goes, the array is
    renamed into place, then the sidecar. A kill at any moment leaves the old pair, the new pair, or an
    array without a sidecar (extracted again), never an array beside another job's or setting's record."""
    sidecar_path = out.with_suffix(".json")
    with atomic_path(sidecar_path) as json_tmp, atomic_path(out) as npy_tmp:  # renamed in reverse order
        json_tmp.write_text(json.dumps(sidecar, indent=2) + "\n")
        with open(npy_tmp, "wb") as f:  # a file object stops np.save from appending ".npy" to the name
            np.save(f, features)
        sidecar_path.unlink(missing_ok=True)


def disk_full(exc: BaseException, path: Path, margin: int = 1 << 20) -> bool:
    """Whether a failed write of `path` was a full disk or quota (the OS error behind a MateError from
    scripts/core/fileio.py, or under 1 MiB free: numpy reports a short write without an errno)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(path.parent).free < margin
    except OSError:
        return False


def settings_from_args(args) -> ExtractSettings:
    """feature_extractor.py's flags as ExtractSettings: the preset's values where a flag is unset; the
    clip rule is the published one for maps, strided for sequences (every frame in a snippet)."""
    clip_sampling = args.clip_sampling or ("strided" if args.layout == "sequence" else "uniform")
    return ExtractSettings.for_backbone(
        args.backbone, num_frames=args.num_frames, sampling_rate=args.sampling_rate, stride=args.stride,
        clip_sampling=clip_sampling, crop_size=args.crop_size, side_size=args.side_size, crops=args.crops,
        batch_size=args.batch_size, decoder=args.decoder, decoder_threads=args.decoder_threads,
        dtype=args.dtype, allow_truncated=args.allow_truncated)


def jobs_from_args(args) -> tuple[list[Job], dict[Path, Path]]:
    """The videos of --video or --video_root with their output paths (a missing or empty source is one
    line), and the paths left out because they lead to a video listed already (scripts/video.scan_videos)."""
    from scripts.extraction.video import VIDEO_EXTENSIONS, check_video_file, scan_videos

    if args.video is not None:
        check_video_file(args.video)
        return plan_jobs([args.video], args.out_dir), {}
    videos, duplicates = scan_videos(args.video_root)
    jobs = plan_jobs(videos, args.out_dir, root=args.video_root)
    if not jobs:
        raise MateError(f"{args.video_root}: no video files found (searched recursively for "
                        f"{', '.join(VIDEO_EXTENSIONS)})")
    return jobs, duplicates


def failures_csv(failures) -> str:
    """failures.csv: a `video,error` header and one row per failed video."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["video", "error"])
    writer.writerows(failures)
    return buf.getvalue()
