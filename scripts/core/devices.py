"""Which device a script runs on: one rule for training, scoring and extraction.

`auto` picks CUDA when present, else the CPU; under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the
environment) `auto` and `cuda` mean this rank's own GPU, cuda:LOCAL_RANK. Asking for a CUDA device the
machine lacks is a user fault (MateError), not a crash.

How many CPU threads torch's operators use (`--threads`, `use_threads`): MATE's models are small, so
an operator's work splits into short pieces and the threads meet at a barrier after each. A thread
that another process has pushed off its core stalls the barrier, and on a 2-core machine two threads
beside one other busy process train the fast model three times slower than one thread does
(docs/speed.md). `auto` therefore takes the cores that are idle when the job starts: all of them on
a quiet machine (two threads train fast 1.2-1.3x faster than one), one per free core otherwise, and
main.py chooses again after every epoch from what other processes used during it (AutoThreads). The
jobs of run_folds.sh and the Makefile ask for one thread each (OMP_NUM_THREADS=1), which auto keeps.
"""
from __future__ import annotations

import math
import os
import time
from typing import Mapping

import torch

from scripts.core.errors import MateError


def torchrun_env(env: Mapping[str, str] = os.environ) -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) under torchrun, else None."""
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))


def resolve_device(name: str, env: Mapping[str, str] = os.environ) -> torch.device:
    """auto: CUDA when present; under torchrun, auto and cuda mean this rank's GPU, cuda:LOCAL_RANK."""
    dist = torchrun_env(env)
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", dist[2] if dist else 0)
    if name == "auto":
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MateError(f"--device: '{name}' is not a device (use auto, cpu, cuda or cuda:<i>)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MateError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MateError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def machine_busy_seconds() -> float | None:
    """CPU-seconds all processes have used since boot (/proc/stat), or None where it cannot be read."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return (sum(fields[:8]) - fields[3] - (fields[4] if len(fields) > 4 else 0)) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def busy_cores(seconds: float = 0.2) -> float | None:
    """How many cores the machine kept busy over `seconds` (all processes; from /proc/stat), or None
    where it cannot be read."""
    t0, busy0 = time.monotonic(), machine_busy_seconds()
    time.sleep(seconds)
    t1, busy1 = time.monotonic(), machine_busy_seconds()
    if busy0 is None or busy1 is None or t1 <= t0:
        return None
    return min(float(os.cpu_count() or 1), max(0.0, (busy1 - busy0) / (t1 - t0)))  # jiffies are coarse


def auto_threads(cores: int, busy: float | None) -> int:
    """Threads for a job on `cores` usable cores when `busy` cores are taken by others (None: unknown,
    then one): the idle ones, at least one."""
    if busy is None:
        return 1
    return max(1, min(cores, cores - math.ceil(busy - 0.25)))  # a quarter-busy core still counts as free


def own_cpu_seconds() -> float:
    """CPU-seconds this process (all its threads) has used."""
    t = os.times()
    return t.user + t.system


class AutoThreads:
    """--threads 0 during training: after every epoch, the thread count is chosen again from how many
    cores other processes kept busy during it (machine minus this process), so a run that began alone
    on two threads drops to one when a neighbour starts, and takes the second core back when it ends.

    Args:
        cores (int): usable cores.
        threads (int): the current count (use_threads' choice).
        busy, own, clock: the machine's busy CPU-seconds, this process's CPU-seconds, wall seconds
            (injectable for tests).
    """

    def __init__(self, cores: int, threads: int, *, busy=machine_busy_seconds, own=own_cpu_seconds,
                 clock=time.monotonic):
        self.cores, self.threads = cores, threads
        self._busy, self._own, self._clock = busy, own, clock
        self._mark = (clock(), busy(), own())

    def update(self) -> str | None:
        """Re-choose after an epoch; returns a line for the run log when the count changed."""
        now, busy, own = self._clock(), self._busy(), self._own()
        (t0, busy0, own0), self._mark = self._mark, (now, busy, own)
        if busy is None or busy0 is None or now <= t0:
            return None
        others = max(0.0, ((busy - busy0) - (own - own0)) / (now - t0))
        threads = auto_threads(self.cores, others)
        if threads == self.threads:
            return None
        note = (f"CPU threads {self.threads} -> {threads}: other processes kept {others:.1f} of "
                f"{self.cores} cores busy during the epoch")
        self.threads = threads
        torch.set_num_threads(threads)
        return note


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_governor(requested: int, env: Mapping[str, str] = os.environ) -> AutoThreads | None:
    """An AutoThreads for training when the thread count is automatic (--threads 0 and no
    OMP_NUM_THREADS / MKL_NUM_THREADS), else None: then the count stays as asked."""
    if requested or any(env.get(name) for name in THREAD_ENV):
        return None
    return AutoThreads(usable_cores(), torch.get_num_threads())


def check_threads(requested: int) -> None:
    """--threads must be 0 (auto) or a count; anything else is one line."""
    if requested < 0:
        raise MateError(f"--threads: must be 0 (auto) or more, got {requested}")


def use_threads(requested: int, env: Mapping[str, str] = os.environ) -> str:
    """Set torch's intra-op threads for --threads (0 = auto, see the module's docstring); returns a
    line for the run log saying what was chosen and why."""
    check_threads(requested)
    if requested:
        torch.set_num_threads(requested)
        return f"{requested} CPU threads (--threads)"
    for name in THREAD_ENV:
        if env.get(name):
            return f"{torch.get_num_threads()} CPU threads ({name}={env[name]})"
    cores = usable_cores()
    busy = busy_cores()
    threads = auto_threads(cores, busy)
    torch.set_num_threads(threads)
    seen = "unknown" if busy is None else f"{busy:.1f}"
    return f"{threads} CPU threads (auto: {cores} cores, {seen} busy at the start)"
