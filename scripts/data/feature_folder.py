"""One feature folder, one set of settings, its shards side by side: the locks and the settings record
behind feature_extractor.py.

    with claim_folder(out_dir, settings_record(settings, backbone), shard_id=0, num_shards=1):
        remove_stale_temps_of([job.out for job in jobs] + [job.out.with_suffix(".json") for job in jobs])
        ...  # extract_all(jobs, ...)

Three small hidden files in the folder:
    .mate_extraction.json       the settings its features are made with (feature_settings.KEYS: backbone,
                                weights, layout, clips, sizes, crops), written atomically by the first job;
    .mate.shard<i>_of_<n>.lock  held for the whole run by shard i of n (--num_shards, torchrun ranks);
    .mate.lock                  (scripts/locks.LOCK_NAME) held only while a job starts, so that reading
                                the record, changing it and taking a shard lock are one step.
A starting job reads the record, then takes its shard lock (a second copy of one shard is refused):
    absent        it writes its own settings;
    equal         it goes on, beside the folder's other shards;
    different     it is refused in one line naming the key, or with --overwrite replaces the record,
                  but only when no other shard lock is held (a job of the old settings still running
                  would interleave its files with ours).
A running job split into another number of shards is refused too: its share overlaps ours. So at any
moment all jobs on a folder have the recorded settings and disjoint shares of the videos: no video is
written by two jobs, and an array and its sidecar always come from one job (scripts/data/sidecar.py's
writer keeps the pair itself consistent through a kill). Locks are the kernel's flock
(scripts/core/locks.py): a killed job's lock is free at once and taken over.

The record holds the settings of the first job (or the last --overwrite); videos already in the folder
keep their own sidecars, and a sidecar of other settings is still refused video by video (a folder from
before the record existed, or shards that did not all rerun with --overwrite). A killed writer's temp
files (`.<name>.<random>.tmp<suffix>`, scripts/core/fileio.py) are removed when the next job starts, only
those of its own outputs: the others may belong to a shard that is running.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Iterable, Iterator

from scripts.core.errors import MateError
from scripts.core.fileio import current_umask, remove_stale_temps, write_json
from scripts.core.locks import LOCK_NAME, exclusive_lock

RECORD_NAME = ".mate_extraction.json"
RECORD_FORMAT = 1
_SHARD_LOCK = re.compile(r"\.mate\.shard(\d+)_of_(\d+)\.lock")


def shard_lock_name(shard_id: int, num_shards: int) -> str:
    return f".mate.shard{shard_id}_of_{num_shards}.lock"


@contextlib.contextmanager
def claim_folder(out_dir: Path, record: dict, *, shard_id: int = 0, num_shards: int = 1,
                 overwrite: bool = False, wait_s: float = 60.0) -> Iterator[list[str]]:
    """Hold shard `shard_id` of `num_shards` of `out_dir` for the `with` block, with settings `record`.

    Yields the differences from the folder's former settings that --overwrite replaced ([] when none).
    Other settings without `overwrite`, the same shard running, or any shard of an overlapping split or
    of other settings running is one MateError line. `wait_s` bounds the wait for the start lock, held by
    a starting job for milliseconds (torchrun starts all ranks at once).
    """
    out_dir = Path(out_dir)
    with contextlib.ExitStack() as stack:
        with _start_lock(out_dir, wait_s):
            remove_stale_temps(out_dir, [RECORD_NAME])  # of a job killed while writing the record
            old = read_record(out_dir, overwrite)
            differ = [] if old is None else differences(old, record)
            if differ and not overwrite:
                raise MateError(f"{out_dir}: feature folder made with other settings ({'; '.join(differ)}; "
                                f"recorded in {RECORD_NAME}); --overwrite extracts its videos again with "
                                "these, or choose another --out_dir")
            mine = shard_lock_name(shard_id, num_shards)
            stack.enter_context(exclusive_lock(out_dir / mine, what=f"shard {shard_id} of {num_shards} of "
                                                                     f"feature folder {out_dir}"))
            replacing = old is None or bool(differ)
            for name, n in _shard_locks(out_dir):  # other running jobs that we must not run beside
                if name != mine and (replacing or n != num_shards):
                    why = "other settings" if replacing else f"{n} shards"
                    with exclusive_lock(out_dir / name, what=f"feature folder {out_dir} (a job with {why})"):
                        pass
            if replacing:
                write_json(out_dir / RECORD_NAME, {"format": RECORD_FORMAT, "settings": record})
        yield differ


@contextlib.contextmanager
def _start_lock(out_dir: Path, wait_s: float) -> Iterator[None]:
    """The folder's LOCK_NAME, waited for: it is held only while a job starts."""
    lock = out_dir / LOCK_NAME
    try:  # a folder or lock we cannot create is a fault at once, not after the wait
        out_dir.mkdir(parents=True, exist_ok=True)
        os.close(os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask()))
    except OSError as exc:
        raise MateError(f"{lock}: cannot create the feature folder's lock ({exc.strerror})") from None
    deadline, held = time.monotonic() + wait_s, contextlib.ExitStack()
    while True:
        try:  # the file exists now: the only refusal left is "in use", which lasts milliseconds
            held.enter_context(exclusive_lock(lock, what=f"feature folder {out_dir}"))
            break
        except MateError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)
    with held:
        yield


def _shard_locks(out_dir: Path) -> list[tuple[str, int]]:
    found = [(p.name, _SHARD_LOCK.fullmatch(p.name)) for p in out_dir.glob(".mate.shard*.lock")]
    return sorted((name, int(m.group(2))) for name, m in found if m)


def read_record(out_dir: Path, overwrite: bool = False) -> dict | None:
    """The folder's recorded settings; None when it has none (or, with `overwrite`, an unreadable one)."""
    path = out_dir / RECORD_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if overwrite:
            return None
        raise MateError(f"{path}: cannot read the feature folder's settings record ({exc}); --overwrite "
                        "replaces it") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT or not isinstance(data.get("settings"), dict):
        if overwrite:
            return None
        raise MateError(f"{path}: not a format-{RECORD_FORMAT} settings record; --overwrite replaces it")
    return data["settings"]


def differences(old: dict, new: dict) -> list[str]:
    """`key: there, here` for every setting that differs; a key missing on one side differs too."""
    keys = list(new) + [k for k in old if k not in new]
    return [f"{k}: {old.get(k)!r} there, {new.get(k)!r} here" for k in keys if old.get(k) != new.get(k)]


def remove_stale_temps_of(outputs: Iterable[Path]) -> list[Path]:
    """Remove the temp files killed jobs left beside `outputs` (scripts/core/fileio.py names them after their
    target). Only the targets given: another shard's temp files in the same folder are its own."""
    by_folder: dict[Path, set[str]] = {}
    for out in outputs:
        by_folder.setdefault(out.parent, set()).add(out.name)
    return [tmp for folder, names in sorted(by_folder.items()) for tmp in remove_stale_temps(folder, names)]
