"""Many videos -> feature files (feature_extractor.py's folder mode): the jobs of a video folder, their
shards, resume, atomic outputs and the failures list.

`extract_all` skips the finished videos (both files there, with these settings), writes each .npy and its
sidecar atomically (scripts/data/sidecar.py: a kill never leaves an array beside a record of other
settings), and records failures instead of stopping, except on a full disk; `shard_jobs` splits the list
between SLURM array tasks and torchrun ranks, and scripts/data/feature_folder.py keeps jobs of other
settings off a folder while its shards run side by side.
"""
from __future__ import annotations

import errno
import os
import shutil
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from scripts.core.devices import torchrun_env
from scripts.core.errors import MateError, mirrored_path
from scripts.data.sidecar import npy_damage, read_sidecar, write_features_and_sidecar
from scripts.extraction.extraction import ClipStream, ExtractSettings, features_from_stream
from scripts.extraction.x3d import X3DFeatures

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
        out = mirrored_path(out_dir, rel.with_suffix(".npy"), f"{video}: its feature file")
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
    redone: list[tuple[str, str]] = field(default_factory=list)  # (video, why its kept .npy was damaged)


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


def _done(job: Job, record: dict, summary: Summary) -> bool:
    """True when both outputs exist with the settings `record` and the array is the one its sidecar records
    (header shape and dtype, file size: npy_damage); a damaged array is redone, said in `summary.redone`;
    other settings are a failure, not a skip (an older sidecar without one of the keys is refused, not
    assumed to match)."""
    sidecar_path = job.out.with_suffix(".json")
    if not (job.out.is_file() and sidecar_path.is_file()):
        return False
    from scripts.data.feature_settings import KEYS, check_clock, settings_of

    sidecar = read_sidecar(job.out) or {}
    damage = npy_damage(job.out, sidecar)
    if damage is not None:
        summary.redone.append((job.name, damage))
        return False
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
            if not overwrite and _done(job, record, summary):
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
        write_features_and_sidecar(job.out, features, sidecar)
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


def settings_from_args(args, batch_size: int = 1, clip_workers: int = 1) -> ExtractSettings:
    """feature_extractor.py's flags as ExtractSettings: the preset's values where a flag is unset; the
    clip rule is the published one for maps, strided for sequences (every frame in a snippet). The clip
    batch and workers are chosen per device by the caller (scripts/extraction/batching.py)."""
    clip_sampling = args.clip_sampling or ("strided" if args.layout == "sequence" else "uniform")
    return ExtractSettings.for_backbone(
        args.backbone, num_frames=args.num_frames, sampling_rate=args.sampling_rate, stride=args.stride,
        clip_sampling=clip_sampling, crop_size=args.crop_size, side_size=args.side_size, crops=args.crops,
        batch_size=batch_size, clip_workers=clip_workers, decoder=args.decoder, decoder_threads=args.decoder_threads,
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
