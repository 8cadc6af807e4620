"""K folds x S seeds in one process over one feature cache (main.py --folds_dir, `make folds`; docs/speed.md).

Each run is the run main.py makes alone, `runs/<exp_name>_s<seed>_fold<k>/` with the same files, checkpoints,
numbers and best epoch (tests/test_fold_study.py checks them equal to separate runs'): the same code
(scripts/training/training.py RunTrainer), its own fold lists, seed, model, optimiser, balanced batches and
torch RNG state. What they share is the feature cache: the training manifest (every fold's train + val
parts) is read once, and each run sees its fold's videos through a view of it, in its list's order. The
runs' epochs go to `--study_workers` forked worker processes, one torch thread each, without a barrier
between epochs (`train_all`): every run is computed exactly as alone, whichever worker steps it. A killed
study resumes run by run (`--resume`: each run from its own checkpoint_last.pth, whatever epoch it reached).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import multiprocessing as mp
import os
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm import tqdm

from scripts.core.errors import MateError
from scripts.core.fileio import remove_stale_temps
from scripts.core.locks import LOCK_NAME, exclusive_lock
from scripts.data.manifest import read_manifest
from scripts.dataset import FeatureDataset
from scripts.models.checkpoint import load_checkpoint
from scripts.training.resume import PLOT_FILES, RUN_FILES, check_disjoint, check_training_options
from scripts.training.training import (RunTrainer, loss_config_from_args, model_config_from_args,
                                       read_training_extraction)


FORK = sys.platform.startswith("linux")  # workers by fork: unsafe beside macOS's frameworks

class DatasetView:
    """The videos `indices` of a loaded FeatureDataset, in that order, as a dataset of their own (what the
    training loop, validation and scoring read), sharing the parent's tensors."""

    def __init__(self, parent: FeatureDataset, indices: Sequence[int]):
        self.parent, self.indices = parent, list(indices)
        self.entries = [parent.entries[i] for i in self.indices]
        self.labels = parent.labels[torch.as_tensor(self.indices, dtype=torch.long)]

    def _map(self, indices: Sequence[int]) -> list[int]:
        return [self.indices[i] for i in indices]

    @property
    def feature_shape(self) -> tuple[int, int, int, int]:
        return tuple(self[0][0].shape)  # type: ignore[return-value]

    @property
    def is_stacked(self) -> bool:
        return self.parent.is_stacked

    @property
    def is_sequence(self) -> bool:
        return self.parent.is_sequence

    @property
    def crop_mode(self) -> str:
        return self.parent.crop_mode

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.parent[self.indices[index]]

    def batch(self, indices: Sequence[int]):
        return self.parent.batch(self._map(indices))

    def motion_maps(self, indices: Sequence[int], window: int, eps: float):
        return self.parent.motion_maps(self._map(indices), window, eps)


def fold_lists(folds_dir: Path, folds: int) -> list[tuple[Path, Path]]:
    """(train, val) manifests of folds 0..K-1 (StratifiedKFold.py's fold{k}_train.txt, fold{k}_val.txt)."""
    out = []
    for k in range(folds):
        pair = (folds_dir / f"fold{k}_train.txt", folds_dir / f"fold{k}_val.txt")
        missing = [str(p) for p in pair if not p.is_file()]
        if missing:
            raise MateError(f"--folds_dir {folds_dir}: no {missing[0]} (--folds {folds}; StratifiedKFold.py writes them)")
        out.append(pair)
    return out


def run_args(args: argparse.Namespace, seed: int, fold: int, lists: tuple[Path, Path]) -> argparse.Namespace:
    """The options of one run, as `main.py --train_list fold<k>_train.txt ... --seed <seed>` would give them."""
    one = copy.copy(args)
    one.seed, one.train_list, one.val_list = seed, lists[0], lists[1]
    one.exp_name = f"{args.exp_name}_s{seed}_fold{fold}"
    one.folds_dir = one.folds = one.seeds = one.study_workers = None
    one.threads = 1  # one torch thread per run; the study's parallelism is its workers
    return one


def load_shared(args: argparse.Namespace, lists: list[tuple[Path, Path]]) -> tuple[list, dict, Any, Any]:
    """The training manifest once (every fold's train + val: the same videos), its extraction record, and
    the feature caches: one for maps (training and validation read the same arrays), training and full-length
    ones for sequences."""
    first = read_manifest(lists[0][0], require_both_labels=True) + read_manifest(lists[0][1], require_both_labels=True)
    names = {e.name for e in first}
    for train, val in lists[1:]:
        other = {e.name for e in read_manifest(train, check_exists=False) + read_manifest(val, check_exists=False)}
        if other != names:
            extra = sorted(other ^ names)[:3]
            raise MateError(f"{train}: its fold's train + val videos are not fold 0's (e.g. {extra}); the folds of a "
                            "study split one training manifest")
    extraction = read_training_extraction(first, first, args)
    common = dict(crop_mode=args.crop_mode, cache_dtype=args.cache_dtype, progress=not args.no_progress,
                  workers=args.num_workers)
    train = FeatureDataset(first, num_segments=args.num_segments, **common)
    val = train if not train.is_sequence else FeatureDataset(first, num_segments=None, **common)
    return first, extraction, train, val


def run_study(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train every (seed, fold) run (see the module docstring); returns each run's summary."""
    check_training_options(args)
    model_config_from_args(args, in_channels=1)  # the model options checked before the features load
    loss_cfg = loss_config_from_args(args)
    pretrained = None if args.pretrained_ckpt is None else load_checkpoint(args.pretrained_ckpt)
    seeds = args.seeds if args.seeds else [args.seed]
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:  # before anything is read or written: one run folder per (seed, fold)
        raise MateError(f"--seeds: {', '.join(map(str, twice))} given more than once; each seed is one run per fold")
    lists = fold_lists(Path(args.folds_dir), args.folds)
    plan = [(seed, k) for seed in seeds for k in range(args.folds)]
    everything, extraction, train_cache, val_cache = load_shared(args, lists)
    where = {e.name: i for i, e in enumerate(everything)}
    workers = args.study_workers or min(len(plan), os.cpu_count() or 1)
    with contextlib.ExitStack() as locks:
        trainers = []
        for seed, k in tqdm(plan, desc="setting up runs", unit="run", disable=args.no_progress, leave=False):
            one = run_args(args, seed, k, lists[k])
            train, val = (read_manifest(p, require_both_labels=True) for p in lists[k])
            check_disjoint(train, val, one.train_list, one.val_list)
            run_dir = Path(one.runs_dir) / one.exp_name
            locks.enter_context(exclusive_lock(run_dir / LOCK_NAME, what=f"run folder {run_dir}"))
            remove_stale_temps(run_dir, RUN_FILES)
            remove_stale_temps(run_dir / "plots", PLOT_FILES)
            data = (DatasetView(train_cache, [where[e.name] for e in train]),
                    DatasetView(val_cache, [where[e.name] for e in val]), extraction)
            trainers.append(RunTrainer(run_dir, one, loss_cfg, pretrained, (train, val), data=data))
        warm_motion_maps(trainers)
        if trainers and trainers[0].device.type != "cpu":
            workers = 1  # a forked process cannot use the parent's CUDA context; the GPU is the parallelism
        else:
            torch.set_num_threads(1)  # CPU runs side by side, one thread each
        train_all(trainers, workers, desc=args.exp_name, progress=not args.no_progress)
        return [t.finish() for t in trainers]


def train_all(trainers: list, workers: int, *, desc: str = "", progress: bool = False) -> list[int]:
    """Every run's remaining epochs on `workers` worker processes; returns each run's last trained epoch.

    The workers are forked once the features are loaded, so they share the cache's pages with this process
    (read-only, never copied) and each steps its runs on one torch thread, as a run alone does: threads of one
    process would lose a fifth of their speed to each other (docs/speed.md). There is no barrier between
    epochs: a free worker takes the run that is furthest behind and not being trained, and trains its next
    epoch, so five runs keep two workers busy to the end. A run's epochs stay in order, one worker at a time;
    a worker taking up a run another worker advanced first restores it from its checkpoint_last.pth, the
    exact continuation --resume makes (and with it the run's own RNG stream, so dropout draws as alone).
    The first error stops the other workers after their epoch and is raised here; this process's runs are
    then brought up to their checkpoints. With one worker, or off Linux, the runs train here."""
    runs = Shared.of(trainers)
    n = min(workers, sum(runs.left(i) > 0 for i in range(len(trainers))))
    bar = tqdm(total=sum(runs.left(i) for i in range(len(trainers))), desc=desc, unit="run-epoch",
               disable=not progress)
    forked = n > 1 and FORK
    print(f"{desc or 'study'}: {len(trainers)} runs, " + (f"{n} forked worker processes of one thread each"
          if forked else "trained in this process"), flush=True)
    with bar:
        if not forked:
            work(trainers, runs, on_epoch=bar.update)
        else:
            ctx = mp.get_context("fork")
            procs = [ctx.Process(target=work, args=(trainers, runs), kwargs={"parent": os.getpid()}, daemon=True)
                     for _ in range(n)]
            for proc in procs:
                proc.start()
            while any(proc.is_alive() for proc in procs):
                for proc in procs:
                    proc.join(timeout=0.5)
                bar.update(runs.count.value - bar.n)
            bar.update(runs.count.value - bar.n)
            for trainer in trainers:
                trainer.catch_up()
            died = [proc.exitcode for proc in procs if proc.exitcode]
            if died and not runs.errors.value:
                runs.fail(f"a study worker died (exit code {died[0]}); the finished epochs are saved: rerun with "
                          "--resume")
    if runs.errors.value:
        raise MateError(runs.errors.value.decode(errors="replace"))
    return list(runs.done)


class Shared:
    """What the workers of train_all share: each run's last trained epoch and last epoch due, which runs a
    worker holds, the epochs trained in all, and the first error."""

    def __init__(self, done: list[int], last: list[int]):
        ctx = mp.get_context("fork" if FORK else None)
        self.lock = ctx.Lock()
        self.done = ctx.Array("i", done, lock=False)
        self.last = list(last)
        self.held = ctx.Array("b", len(done), lock=False)
        self.count = ctx.Value("i", 0, lock=False)
        self.errors = ctx.Array("c", 1000, lock=False)

    @classmethod
    def of(cls, trainers: list) -> "Shared":
        return cls([t.state.epoch for t in trainers], [t.remaining().stop - 1 for t in trainers])

    def left(self, i: int) -> int:
        return self.last[i] - self.done[i]

    def take(self, current: list[bool]) -> int | None:
        """Under the lock: the free run furthest behind (one this worker holds up to date first), marked held."""
        free = [i for i in range(len(self.last)) if not self.held[i] and self.left(i) > 0]
        if self.errors.value or not free:  # nothing free: what is left is held by other workers
            return None
        i = min(free, key=lambda i: (self.done[i], not current[i], i))
        self.held[i] = 1
        return i

    def fail(self, message: str) -> None:
        with self.lock:
            if not self.errors.value:
                self.errors.value = message.encode()[:999]


def work(trainers: list, runs: Shared, *, parent: int | None = None, on_epoch=lambda: None) -> None:
    """One worker of train_all: take a run, bring it up to date, train its next epoch, give it back."""
    if parent is not None:
        die_with_parent()
        torch.set_num_threads(1)
        for trainer in trainers:
            trainer.reopen_board()  # a forked process has none of the parent's writer threads
    current = [False] * len(trainers)
    try:
        while parent is None or os.getppid() == parent:  # an orphaned worker stops
            with runs.lock:
                i = runs.take([c and runs.done[j] == trainers[j].state.epoch for j, c in enumerate(current)])
            if i is None:
                return
            trainer = trainers[i]
            try:
                if trainer.state.epoch != runs.done[i]:
                    trainer.catch_up()
                trainer.epoch_with_own_rng(runs.done[i] + 1)
            except MateError as error:
                runs.fail(str(error))
                return
            except Exception as error:  # noqa: BLE001 - reported in one line by the parent
                runs.fail(f"{trainer.run_dir}: {type(error).__name__}: {error}")
                return
            current[i] = True
            with runs.lock:
                runs.done[i], runs.held[i] = trainer.state.epoch, 0
                runs.count.value += 1
            on_epoch()
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the main process says it, once
        if parent is None:
            raise
    finally:
        if parent is not None:
            for trainer in trainers:
                trainer.close_board()


def die_with_parent() -> None:
    """A killed study takes its workers with it (Linux: PR_SET_PDEATHSIG), so their run-folder locks are free
    for the rerun at once; elsewhere a worker stops after its epoch (work checks the parent)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG; every file is written to a temp file and renamed
    except (OSError, AttributeError):
        pass


def warm_motion_maps(trainers: list[RunTrainer]) -> None:
    """Compute the shared caches' MotionMaps once, before the workers fork (they then share them too)."""
    from scripts.model import feature_motion_map

    if not trainers:
        return
    first = trainers[0]  # every run's view reads the same cache, with the same MotionMap settings
    key = feature_motion_map(first.model)
    if key and first.train_ds.is_stacked:
        first.train_ds.motion_maps([0], *key)
