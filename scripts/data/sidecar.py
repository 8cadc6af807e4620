"""The sidecar: the `<name>.json` that feature_extractor.py writes beside every feature file `<name>.npy`,
recording how it was made (docs/design.md §2). Its writer and its readers live here.

Keys: video, fps, num_frames, declared_frames, duration_s (the video); backbone, weights, layout,
sequence_feature (sequence layout only), frames_per_clip, sampling_rate, stride, clip_sampling,
side_size, crop_size, crops, decoder, dtype (the extraction, scripts/data/feature_settings.py compares
the ones that decide what a feature means); clock_fps, window_s, stride_s (the clock in seconds the
clips were cut on, scripts/extraction/clips.py; absent in sidecars of the earlier frame-count rule);
shape, num_clips, padded, padded_frames, dropped_frames, truncated (what came out). The sidecar is
written after its array and marks it complete.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np

from scripts.core.errors import MateError
from scripts.core.fileio import atomic_path, npy_header_fault


def sidecar_path(feature_path: str | Path) -> Path:
    """`<name>.json` beside `<name>.npy`."""
    return Path(feature_path).with_suffix(".json")


def read_sidecar(feature_path: str | Path) -> dict | None:
    """The extractor's `<name>.json` beside a feature file, or None."""
    path = sidecar_path(feature_path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MateError(f"{path}: unreadable sidecar JSON ({exc})") from None


def write_features_and_sidecar(out: Path, features: np.ndarray, sidecar: dict) -> None:
    """The .npy and its sidecar, which marks it complete: both written to temp files first, so a write
    that fails (a full disk) leaves the previous pair as it was; then the old sidecar goes, the array is
    renamed into place, then the sidecar. A kill at any moment leaves the old pair, the new pair, or an
    array without a sidecar (extracted again), never an array beside another job's or setting's record."""
    json_path = sidecar_path(out)
    with atomic_path(json_path) as json_tmp, atomic_path(out) as npy_tmp:  # renamed in reverse order
        json_tmp.write_text(json.dumps(sidecar, indent=2) + "\n")
        with open(npy_tmp, "wb") as f:  # a file object stops np.save from appending ".npy" to the name
            np.save(f, features)
        json_path.unlink(missing_ok=True)


def npy_damage(path: Path, sidecar: dict) -> str | None:
    """Why a kept feature file does not match its sidecar (None: it does), from its header and size alone (no
    full read): not a .npy, another shape or dtype than the sidecar records, or fewer or more bytes than that
    header promises (a truncated copy, a file overwritten after extraction)."""
    try:
        fault = npy_header_fault(path)
        if fault is not None:
            return fault
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # the header read, the data only mapped
        shape, dtype, offset = mapped.shape, mapped.dtype, mapped.offset
        del mapped
    except (OSError, ValueError, EOFError, AttributeError) as exc:
        if "mmap length is greater than file size" in str(exc):
            return "shorter than its header promises (truncated)"
        return f"not a readable .npy ({str(exc).splitlines()[0][:80]})"
    if list(shape) != list(sidecar.get("shape", shape)) or dtype.name != sidecar.get("dtype", dtype.name):
        return f"{dtype.name} {list(shape)} where its sidecar records {sidecar.get('dtype')} {sidecar.get('shape')}"
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    return None if size == expected else f"{size:,} bytes where its header promises {expected:,}"


def video_fps(sidecar: dict) -> Fraction | None:
    """The frame rate that maps a feature's frames to its snippets in time: the sidecar's fps when it was
    made on the clock in seconds (it has `window_s`, scripts/extraction/clips.py), else None (frames count)."""
    fps = sidecar.get("fps")
    if "window_s" not in sidecar or not fps:
        return None
    return Fraction(fps).limit_denominator(10**5) * Fraction(30, int(sidecar.get("clock_fps") or 30))
