"""UCF-Crime's official split (docs/data.md): videos per class in its split files, the allocation of any
number of videos in its proportions, its names, and the 1,610 + 290 official videos in order (the
synthetic set's `--names official`). The classes themselves are scripts/data/manifest.py's UCF_CLASSES.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from scripts.core.errors import MateError
from scripts.core.fileio import read_lines
from scripts.data.lists import OFFICIAL_TEST, OFFICIAL_TRAIN
from scripts.data.manifest import NORMAL_CLASS, UCF_CLASSES

# Videos per class in UCF-Crime's official split files (Anomaly_Train.txt: 1,610 videos,
# Anomaly_Test.txt: 290), in UCF_CLASSES order.
UCF_TRAIN_COUNTS = dict(zip(UCF_CLASSES, (48, 45, 41, 47, 87, 29, 45, 127, 145, 27, 29, 95, 45)))
UCF_TRAIN_COUNTS[NORMAL_CLASS] = 800
UCF_TEST_COUNTS = dict(zip(UCF_CLASSES, (2, 5, 9, 3, 13, 21, 5, 23, 5, 23, 21, 5, 5)))
UCF_TEST_COUNTS[NORMAL_CLASS] = 150
ALL_CLASSES = UCF_CLASSES + (NORMAL_CLASS,)
_COUNTS = {"train": UCF_TRAIN_COUNTS, "test": UCF_TEST_COUNTS}


def class_allocation(n: int, split: str) -> dict[str, int]:
    """Videos per class for `n` videos with `split`'s ('train' or 'test') UCF-Crime proportions.

    Normal gets round(n * normal share); the anomalous videos go to the 13 classes by largest
    remainder, and when there are at least 13 every class gets one (taken from the class most above
    its quota). n = 1,610 (train) or 290 (test) gives UCF-Crime's own counts.
    """
    if split not in _COUNTS:
        raise MateError(f"split must be 'train' or 'test', got {split!r}")
    counts = _COUNTS[split]
    total = sum(counts.values())
    n_normal = round(n * counts[NORMAL_CLASS] / total)
    n_anom = n - n_normal
    anom_total = total - counts[NORMAL_CLASS]
    quota = {c: n_anom * counts[c] / anom_total for c in UCF_CLASSES}
    alloc = {c: int(np.floor(q)) for c, q in quota.items()}
    by_remainder = sorted(UCF_CLASSES, key=lambda c: -(quota[c] - alloc[c]))  # stable: ties by class order
    for c in by_remainder[: n_anom - sum(alloc.values())]:
        alloc[c] += 1
    if n_anom >= len(UCF_CLASSES):
        for c in UCF_CLASSES:
            if alloc[c] == 0:
                donor = max((d for d in UCF_CLASSES if alloc[d] >= 2), key=lambda d: alloc[d] - quota[d])
                alloc[donor] -= 1
                alloc[c] = 1
    alloc[NORMAL_CLASS] = n_normal
    return alloc


def video_name(cls: str, number: int, split: str) -> str:
    """UCF-Crime's spelling: `Abuse001_x264`; normal `Normal_Videos001_x264` (train), `..._003_...` (test)."""
    if cls == NORMAL_CLASS:
        return f"Normal_Videos{'_' if split == 'test' else ''}{number:03d}_x264"
    return f"{cls}{number:03d}_x264"


def official_jobs() -> list[tuple[str, str, int, str]]:
    """The 1,610 + 290 videos of UCF-Crime's official split files (data/ucf_crime), by their own names and
    in their order, so the official-split commands run on the synthetic folder as written."""
    jobs, seen = [], {}
    for split, path in (("train", OFFICIAL_TRAIN), ("test", OFFICIAL_TEST)):
        for line in read_lines(path, "split file"):
            if not line.strip():
                continue
            folder, file = line.strip().split("/")
            cls = NORMAL_CLASS if "Normal" in folder else folder
            index = seen[split, cls] = seen.get((split, cls), -1) + 1
            jobs.append((split, cls, index, Path(file).stem))
    return jobs
