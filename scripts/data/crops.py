"""Per-crop manifests: one line per crop, `<video>__<k>.npy` (import_peers.py --crops each), as UR-DMU,
PEL4VAD and BN-WVAD train. The line is a crop file of its own (`[T, D]`, Wu's family) or a link to the video's
`[T, K, D]` file, of which it reads crop k (RTFM's family: no crop is written apart). Either way every crop
is a training sample of its own, and at test (and validation) a video's score is the mean over its crops'
scores (docs/benchmarks.md, "Crops"). The crops of a video stay together in folds (scripts/data/folds.py), so
no video is in a fold's train and val parts at once. The name rule (crop_video, crop_index) is the manifest's
(scripts/data/manifest.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from scripts.core.errors import MateError
from scripts.data.manifest import VideoEntry, crop_video


def crop_groups(entries: Sequence[VideoEntry], *, source: str = "manifest") -> list[tuple[str, list[int]]] | None:
    """The videos of a per-crop manifest, in first-appearance order, with the indices of their crop lines;
    None for a manifest of whole videos. A mix of both, or crops of one video that disagree on label or
    class, is an error."""
    videos = [crop_video(e.name) for e in entries]
    if all(v is None for v in videos):
        return None
    if any(v is None for v in videos):
        whole = next(e for e, v in zip(entries, videos) if v is None)
        raise MateError(f"{source}: {whole.name} is a whole video among per-crop lines (`<video>__<k>.npy`); a "
                        "manifest lists crops or videos, not both")
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(videos):
        groups.setdefault(v, []).append(i)
    for v, idx in groups.items():
        if len({(entries[i].label, entries[i].cls) for i in idx}) > 1:
            raise MateError(f"{source}: the crops of {v} disagree on label or class")
    return list(groups.items())


def video_entry(video: str, crops: Sequence[VideoEntry]) -> VideoEntry:
    """One entry standing for a video's crops: its name, label and class (path: beside its first crop)."""
    return VideoEntry(path=Path(crops[0].path).with_name(f"{video}.npy"), label=crops[0].label, cls=crops[0].cls)


def per_video(entries: Sequence[VideoEntry], groups: list[tuple[str, list[int]]]) -> list[VideoEntry]:
    return [video_entry(v, [entries[i] for i in idx]) for v, idx in groups]


def as_videos(entries: Sequence[VideoEntry], *, source: str = "manifest") -> list[VideoEntry]:
    """The videos of a manifest: one entry per video of a per-crop manifest, the entries otherwise."""
    groups = crop_groups(entries, source=source)
    return list(entries) if groups is None else per_video(entries, groups)


def count_videos(entries: Sequence[VideoEntry], what: str = "", *, source: str = "manifest") -> str:
    """`64 train videos (320 crop lines)` for a per-crop manifest, `64 train videos` otherwise: counts are of
    videos everywhere, crop lines named as such."""
    videos = len(as_videos(entries, source=source))
    text = f"{videos} {what + ' ' if what else ''}videos"
    return text if videos == len(entries) else f"{text} ({len(entries)} crop lines)"
