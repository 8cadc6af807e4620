"""main.py --folds_dir: K folds x seeds in one process over one feature cache equal K separate main.py runs
(the same metrics.csv rows but for the seconds, the same best epochs, bitwise the same checkpoints), its runs
load alone in test.py, and a study killed midway resumes run by run to the unbroken study's numbers.
The runs use dropout, so each run's random stream is checked too: its epochs move between the two worker
processes, and a worker taking a run up restores its state (RNG included) from its checkpoint."""
import csv
from pathlib import Path

import pytest
import torch

from scripts.data.synthetic import make_synthetic
from scripts.models.checkpoint import load_checkpoint
from tests.conftest import run_script

COMMON = ["--model_variant", "fast", "--batch_size", "8", "--lr", "0.005", "--warmup_epochs", "1",
          "--dropout", "0.2", "--no_progress", "--no_plots"]  # dropout: each run's own random stream, as alone


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    make_synthetic(root / "syn", n_train=24, n_test=8, seed=0, progress=False)
    assert run_script("StratifiedKFold.py", "--rgb_list", root / "syn/train.txt", "--test_list",
                      root / "syn/test.txt", "--k", "2", "--out_dir", root / "folds").returncode == 0
    return root


def rows(run):
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def same_weights(a, b) -> bool:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def study_and_separate(folds):
    runs = folds / "runs"
    done = run_script("main.py", "--folds_dir", folds / "folds", "--folds", "2", "--seeds", "0", "1",
                      "--exp_name", "st", "--runs_dir", runs, "--max_epoch", "3", "--study_workers", "2", *COMMON)
    assert done.returncode == 0, done.stderr
    for seed in (0, 1):
        for k in range(2):
            done = run_script("main.py", "--train_list", folds / f"folds/fold{k}_train.txt", "--val_list",
                              folds / f"folds/fold{k}_val.txt", "--seed", seed, "--exp_name", f"alone_s{seed}_fold{k}",
                              "--runs_dir", runs, "--max_epoch", "3", *COMMON)
            assert done.returncode == 0, done.stderr
    return runs


@pytest.mark.slow  # make test-slow (make test stays under 90 s on 2 cores)
def test_the_study_equals_separate_runs(study_and_separate, folds):
    runs = study_and_separate
    for seed in (0, 1):
        for k in range(2):
            study, alone = runs / f"st_s{seed}_fold{k}", runs / f"alone_s{seed}_fold{k}"
            assert rows(study) == rows(alone), (seed, k)
            assert load_checkpoint(study / "checkpoint_best.pth")["epoch"] == \
                load_checkpoint(alone / "checkpoint_best.pth")["epoch"]
            for name in ("checkpoint_best.pth", "checkpoint_last.pth"):
                assert same_weights(study / name, alone / name), (seed, k, name)
    done = run_script("test.py", "--test_list", folds / "folds/fold1_test.txt", "--checkpoint",
                      runs / "st_s1_fold1/checkpoint_best.pth", "--no_progress", "--no_plots", "--n_boot", "20")
    assert done.returncode == 0, done.stderr  # a study's run loads alone


@pytest.mark.slow  # make test-slow (make test stays under 90 s on 2 cores)
def test_a_killed_study_resumes_to_the_unbroken_numbers(study_and_separate, folds, tmp_path):
    runs = tmp_path / "runs"
    argv = ["main.py", "--folds_dir", folds / "folds", "--folds", "2", "--seeds", "0", "1", "--exp_name", "st",
            "--runs_dir", runs, "--max_epoch", "3", "--study_workers", "2", *COMMON]
    assert run_script(*argv, "--stop_epoch", "1").returncode == 0  # as if killed after epoch 1
    # a run killed further behind: its epoch-1 files gone, as if killed in its first epoch
    for name in ("checkpoint_last.pth", "checkpoint_best.pth", "metrics.csv"):
        (runs / "st_s1_fold1" / name).unlink()
    done = run_script(*argv, "--resume")
    assert done.returncode == 0, done.stderr
    for seed in (0, 1):
        for k in range(2):
            assert rows(runs / f"st_s{seed}_fold{k}") == rows(study_and_separate / f"st_s{seed}_fold{k}")
            assert same_weights(runs / f"st_s{seed}_fold{k}/checkpoint_last.pth",
                                study_and_separate / f"st_s{seed}_fold{k}/checkpoint_last.pth")


def test_the_lists_must_be_one_split(folds, tmp_path):
    done = run_script("main.py", "--folds_dir", folds / "folds", "--folds", "3", "--exp_name", "d", "--runs_dir",
                      tmp_path / "runs", "--max_epoch", "1", *COMMON)
    assert done.returncode == 2 and "fold2_train.txt (--folds 3" in done.stderr


def test_a_seed_given_twice_is_one_line_and_writes_nothing(folds, tmp_path):
    """Issue #31 item 17: it locked its own run folder ("in use by pid N", itself) after starting others."""
    done = run_script("main.py", "--folds_dir", folds / "folds", "--folds", "2", "--seeds", "0", "0", "--exp_name",
                      "d", "--runs_dir", tmp_path / "runs", "--max_epoch", "1", *COMMON)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--seeds: 0 given more than once; each seed is one run per fold" in done.stderr
    assert not (tmp_path / "runs").exists()



class FakeRun:
    """A run of `epochs` epochs that leaves a file per trained epoch in `root` (O_EXCL: an epoch trained
    twice fails) after checking the epoch before it exists (order), from whichever process trains it."""

    def __init__(self, root, name: str, epochs: int, fail_at: int | None = None):
        import types
        self.root, self.name, self.epochs, self.fail_at = root, name, epochs, fail_at
        self.state, self.run_dir = types.SimpleNamespace(epoch=0), root / name

    def remaining(self) -> range:
        return range(self.state.epoch + 1, self.epochs + 1)

    def catch_up(self) -> None:
        done = [int(p.name.split("_")[1]) for p in self.root.glob(f"{self.name}_*")]
        self.state.epoch = max(done, default=0)

    def epoch_with_own_rng(self, epoch: int) -> None:
        import os
        import time
        assert epoch == 1 or (self.root / f"{self.name}_{epoch - 1}").exists()
        if epoch == self.fail_at:
            raise ValueError(f"failed at {epoch}")
        time.sleep(0.01)
        os.close(os.open(self.root / f"{self.name}_{epoch}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        self.state.epoch = epoch

    def reopen_board(self) -> None:
        pass

    close_board = reopen_board


def test_train_all_steps_every_run_in_order_on_worker_processes(tmp_path):
    from scripts.core.errors import MateError
    from scripts.training.fold_study import train_all
    epochs = [4, 4, 0, 7, 4]
    runs = [FakeRun(tmp_path, f"r{i}", n) for i, n in enumerate(epochs)]
    assert train_all(runs, 2) == epochs
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"r{i}_{e}" for i, n in enumerate(epochs)
                                                               for e in range(1, n + 1))
    assert [r.state.epoch for r in runs] == epochs  # this process's runs brought up to date
    (tmp_path / "f").mkdir()
    failing = [FakeRun(tmp_path / "f", f"r{i}", 3, fail_at=2 if i == 1 else None) for i in range(3)]
    with pytest.raises(MateError, match="r1: ValueError: failed at 2"):
        train_all(failing, 2)
    assert not (tmp_path / "f/r1_2").exists()



def test_a_worker_dies_with_its_parent():
    """die_with_parent (every study worker calls it): a killed main.py takes its workers at once, so the
    run folders' locks are free for the rerun. Here a forked 'parent' forks a 'worker' and exits."""
    import os
    import sys
    import time
    from scripts.training.fold_study import die_with_parent
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's; elsewhere a worker stops after its epoch")
    read, write = os.pipe()
    parent = os.fork()
    if parent == 0:  # the study's main process
        worker = os.fork()
        if worker == 0:
            die_with_parent()
            time.sleep(30)
            os._exit(0)
        os.write(write, str(worker).encode())
        time.sleep(0.2)  # the worker has set its death signal
        os._exit(0)
    worker = int(os.read(read, 32))
    os.waitpid(parent, 0)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":  # dead, not yet reaped by init
            break
        time.sleep(0.02)
    else:
        os.kill(worker, 9)
        raise AssertionError("the worker outlived its parent")
