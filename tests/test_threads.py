"""How many CPU threads a job takes (scripts/core/devices.py, --threads) and the allocator setting of the
scripts (scripts/core/cli.py): the choices, not their speed (that is docs/speed.md's)."""
from __future__ import annotations

import pytest
import torch

from scripts.core.memory import keep_freed_memory, release_freed_memory
from scripts.dataset import stack_freeing
from scripts.core.devices import auto_threads, busy_cores, use_threads
from scripts.core.errors import MateError


@pytest.mark.parametrize("cores,busy,expected", [
    (2, 0.0, 2),    # a quiet machine: every core
    (2, 0.2, 2),    # a little background work does not cost a core
    (2, 1.0, 1),    # one other busy job: one thread, no barrier waiting on a descheduled thread
    (2, 2.0, 1),    # all taken: still one
    (16, 3.4, 12),
    (4, None, 1),   # unknown load: the safe choice
])
def test_auto_threads_takes_the_idle_cores(cores, busy, expected):
    assert auto_threads(cores, busy) == expected


def test_use_threads_explicit_environment_and_auto(monkeypatch):
    assert use_threads(3, env={}) == "3 CPU threads (--threads)" and torch.get_num_threads() == 3
    torch.set_num_threads(1)
    assert use_threads(0, env={"OMP_NUM_THREADS": "1"}) == "1 CPU threads (OMP_NUM_THREADS=1)"
    monkeypatch.setattr("scripts.core.devices.busy_cores", lambda: 1.0)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert use_threads(0, env={}) == "1 CPU threads (auto: 2 cores, 1.0 busy at the start)"
    monkeypatch.setattr("scripts.core.devices.busy_cores", lambda: 0.0)
    assert use_threads(0, env={}).startswith("2 CPU threads (auto: 2 cores, 0.0 busy")
    assert torch.get_num_threads() == 2
    with pytest.raises(MateError, match="--threads: must be 0"):
        use_threads(-1, env={})


def test_busy_cores_reads_the_machine():
    busy = busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= (__import__("os").cpu_count() or 1) + 1e-9


def test_threads_option_reaches_the_run_log(tmp_path):
    from conftest import run_script
    from scripts.data.synthetic import make_synthetic

    make_synthetic(tmp_path / "d", n_train=16, n_test=8, seed=0, feature_dim=16, progress=False)
    done = run_script("main.py", "--train_list", tmp_path / "d" / "train.txt", "--val_list", tmp_path / "d" / "test.txt",
                      "--runs_dir", tmp_path / "runs", "--exp_name", "t", "--max_epoch", "1", "--batch_size", "8",
                      "--threads", "1", "--no_progress")
    assert done.returncode == 0, done.stderr
    assert "(1 CPU threads (--threads))" in (tmp_path / "runs" / "t" / "train.log").read_text()
    bad = run_script("main.py", "--train_list", tmp_path / "d" / "train.txt", "--val_list", tmp_path / "d" / "test.txt",
                     "--runs_dir", tmp_path / "runs", "--exp_name", "bad", "--threads", "-1", "--no_progress")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --threads: must be 0 (auto) or more, got -1"
    assert not (tmp_path / "runs" / "bad").exists()  # refused before anything is written


def test_stack_freeing_equals_stack_and_empties_the_list():
    items = [torch.full((2, 3), float(i)) for i in range(4)]
    expected = torch.stack(items)
    out = stack_freeing(items)
    assert torch.equal(out, expected) and items == [None] * 4


def test_keep_freed_memory_is_harmless():
    keep_freed_memory()  # twice is fine, and allocation still works
    keep_freed_memory()
    assert torch.ones(3 << 20).sum() == 3 << 20
    release_freed_memory()


class Readings:
    """Scripted /proc/stat and os.times readings: (wall, machine busy, own) per call of the clock."""

    def __init__(self, rows):
        self.rows, self.i = rows, -1

    def clock(self):
        self.i += 1
        return self.rows[self.i][0]

    def busy(self):
        return self.rows[self.i][1]

    def own(self):
        return self.rows[self.i][2]


def test_auto_threads_follow_the_neighbours_epoch_by_epoch():
    from scripts.core.devices import AutoThreads

    r = Readings([(0, 0, 0),
                  (10, 20, 11),    # 2 threads, a neighbour used 9 of 10 s: drop to one
                  (20, 40, 21),    # one thread, the neighbour still busy (10 s of 10): stay
                  (30, 50.5, 31),  # the neighbour is gone (0.5 s): take both cores
                  (40, 70, 50)])   # alone on two threads: stay
    gov = AutoThreads(2, 2, busy=r.busy, own=r.own, clock=r.clock)
    assert gov.update() == "CPU threads 2 -> 1: other processes kept 0.9 of 2 cores busy during the epoch"
    assert torch.get_num_threads() == 1 and gov.threads == 1
    assert gov.update() is None and gov.threads == 1
    assert gov.update().startswith("CPU threads 1 -> 2") and torch.get_num_threads() == 2
    assert gov.update() is None
    torch.set_num_threads(1)


def test_thread_governor_only_for_automatic_counts():
    from scripts.core.devices import AutoThreads, thread_governor

    assert thread_governor(1, env={}) is None
    assert thread_governor(0, env={"OMP_NUM_THREADS": "1"}) is None
    gov = thread_governor(0, env={})
    assert isinstance(gov, AutoThreads) and gov.threads == torch.get_num_threads() and gov.cores >= 1
