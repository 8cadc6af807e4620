"""Runs that survive concurrent jobs, kills and full disks (issue #11): one job per run folder, a killed
job's lock and temp files taken over, --resume only with the run's options (--max_epoch may grow),
bad training options and mismatched checkpoints refused in one line, write failures keeping the
previous epoch's files."""
import csv
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scripts.models.checkpoint import load_checkpoint
from scripts.dataset import BalancedBatchSampler
from scripts.data.manifest import read_manifest
from scripts.data.synthetic import make_synthetic
from scripts.training.training import build_scheduler
from tests.conftest import ROOT, run_script

EPOCHS = 3


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """16 training and 8 validation videos of the map layout (seed 0): an epoch takes a blink."""
    root = tmp_path_factory.mktemp("synth")
    make_synthetic(root, n_train=16, n_test=8, seed=0, progress=False)
    return root


def argv(synth: Path, runs: Path, name: str, *extra) -> list[str]:
    return [str(a) for a in ("--train_list", synth / "train.txt", "--val_list", synth / "test.txt", "--runs_dir",
                             runs, "--exp_name", name, "--model_variant", "fast", "--batch_size", "8", "--lr",
                             "0.005", "--warmup_epochs", "1", "--max_epoch", EPOCHS, "--no_progress", "--no_plots", *extra)]


@pytest.fixture(scope="module")
def finished(synth, tmp_path_factory):
    """A finished run of EPOCHS epochs (seed 0) that tests copy before touching."""
    runs = tmp_path_factory.mktemp("runs")
    assert run_script("main.py", *argv(synth, runs, "done")).returncode == 0
    return runs / "done"


def copy_run(run: Path, tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    shutil.copytree(run, runs / run.name)
    return runs


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def one_line_error(proc, *needles) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp*"))


# --- one job per run folder --------------------------------------------------------------------------

# main.py in a new interpreter whose training waits at the start of epoch `epoch` until the test
# creates <gate>/go (after writing <gate>/waiting): the job holds its run folder's lock for as long as
# the test needs, with no timing involved.
GATED_MAIN = """
import os, runpy, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import scripts.training.training as training
gate, train_one_epoch = Path({gate!r}), training.train_one_epoch
def gated(*args):  # (model, ..., device, epoch)
    if args[-1] == {epoch}:
        (gate / "waiting").write_text(str(os.getpid()))
        for _ in range(6000):  # at most ten minutes, should the test die first
            if (gate / "go").exists():
                break
            time.sleep(0.1)
    return train_one_epoch(*args)
training.train_one_epoch = gated
sys.argv = ["main.py", *{argv!r}]
runpy.run_path({main!r}, run_name="__main__")
"""


def start_gated(tmp_path: Path, args: list[str], epoch: int) -> tuple[subprocess.Popen, Path]:
    gate = tmp_path / "gate"
    gate.mkdir()
    code = GATED_MAIN.format(root=str(ROOT), gate=str(gate), epoch=epoch, argv=args, main=str(ROOT / "main.py"))
    with open(tmp_path / "job.out", "w") as out, open(tmp_path / "job.err", "w") as err:
        job = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=err)
    while not (gate / "waiting").exists():  # polled, not timed: the job either gets there or ends
        if job.poll() is not None:
            pytest.fail(f"the job ended ({job.returncode}) before the gate: {(tmp_path / 'job.err').read_text()}")
        time.sleep(0.05)
    return job, gate


@pytest.mark.slow  # processes and their timing: make test-slow
def test_second_job_on_a_run_folder_is_refused_naming_the_first(synth, tmp_path):
    runs = tmp_path / "runs"
    run = runs / "shared"
    job, gate = start_gated(tmp_path, argv(synth, runs, "shared", "--seed", "1"), epoch=2)
    try:
        assert f"pid {job.pid} on {socket.gethostname()} since " in (run / ".mate.lock").read_text()
        before = {name: (run / name).read_bytes() for name in ("checkpoint_last.pth", "train.log", "config.json")}
        # another job (in this process: flock locks per open file, so it conflicts all the same), another seed,
        # even --overwrite: refused before it touches anything
        second = run_script("main.py", *argv(synth, runs, "shared", "--seed", "2", "--overwrite"))
        line = one_line_error(second, f"run folder {run} is in use by pid {job.pid} on {socket.gethostname()} ",
                              f"(lock {run / '.mate.lock'})")
        assert line.startswith(f"error: run folder {run} is in use")
        assert {name: (run / name).read_bytes() for name in before} == before
        assert f"pid {job.pid} on " in (run / ".mate.lock").read_text()  # the refused job kept the holder's record
    finally:
        (gate / "go").touch()
        assert job.wait(timeout=600) == 0, (tmp_path / "job.err").read_text()
    # the folder holds one run: the first job's, start to end
    last = load_checkpoint(run / "checkpoint_last.pth")
    assert last["epoch"] == EPOCHS and last["options"]["seed"] == 1
    assert load_checkpoint(run / "checkpoint_best.pth")["options"]["seed"] == 1
    assert [int(r["epoch"]) for r in rows(run)] == list(range(1, EPOCHS + 1))
    log = [line.split(" ", 2)[2] for line in (run / "train.log").read_text().splitlines()]
    assert [line.split(" ")[0] for line in log] == ["starting"] + ["epoch"] * EPOCHS + ["finished:"]
    assert [line.split(" ")[1] for line in log[1:-1]] == [f"{e}/{EPOCHS}" for e in range(1, EPOCHS + 1)]
    assert (run / ".mate.lock").read_text() == ""  # released


@pytest.mark.slow  # processes and their timing: make test-slow
def test_a_killed_jobs_lock_and_temp_files_are_taken_over(synth, tmp_path):
    runs = tmp_path / "runs"
    run = runs / "killed"
    job, _ = start_gated(tmp_path, argv(synth, runs, "killed"), epoch=2)
    job.send_signal(signal.SIGKILL)
    assert job.wait(timeout=60) == -signal.SIGKILL
    assert f"pid {job.pid} " in (run / ".mate.lock").read_text()  # its record stays; the kernel freed the lock
    # what killed writers leave: main.py's temp files go, test.py's (another job's outputs) stay
    for name in (".checkpoint_last.pth.k1ll.tmp.pth", ".metrics.csv.k1ll.tmp.csv", "plots/.loss.png.k1ll.tmp.png",
                 "plots/.roc_curve.png.live.tmp.png"):
        (run / name).parent.mkdir(exist_ok=True)
        (run / name).write_bytes(b"half")
    proc = run_script("main.py", *argv(synth, runs, "killed", "--resume"))
    assert proc.returncode == 0, proc.stderr
    assert temps(run) == [] and temps(run / "plots") == [".roc_curve.png.live.tmp.png"]
    assert f"resuming {run} at epoch 2/{EPOCHS}" in (run / "train.log").read_text()
    assert [int(r["epoch"]) for r in rows(run)] == list(range(1, EPOCHS + 1))
    assert (run / ".mate.lock").read_text() == ""


# --- --resume ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, stored", [
    ("--lr", "0.01", "0.005"), ("--seed", "5", "0"), ("--batch_size", "4", "8"), ("--weight_decay", "0.0", "0.002"),
    ("--warmup_epochs", "2.0", "1.0"), ("--grad_clip", "0.5", "1.0"), ("--dim", "16", "unset (the default)"),
    ("--model_variant", "base", "fast"), ("--lambda_triplet", "0.2", "0.1"), ("--cache_dtype", "float16", "float32"),
    ("--num_segments", "16", "32"), ("--crop_mode", "space", "mean"), ("--no_tcc", None, "False"),
    ("--frames_per_snippet", "8", "16")])
def test_resume_refuses_a_changed_option(finished, synth, tmp_path, flag, value, stored):
    runs = copy_run(finished, tmp_path)
    run = runs / finished.name
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    proc = run_script("main.py", *argv(synth, runs, finished.name, "--resume", flag, *([value] if value else [])))
    one_line_error(proc, f"{run / 'checkpoint_last.pth'}: --resume with {flag} {value or 'True'}, but the run was "
                         f"made with {stored}", "start a new --exp_name")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # nothing written


def test_resume_accepts_where_and_how_it_runs(finished, synth, tmp_path):
    """Device, threads, scoring batch, progress and the lists' spelling (relative here) may change."""
    runs = copy_run(finished, tmp_path)
    args = argv(synth, runs, finished.name, "--resume", "--device", "cpu", "--num_workers", "2",
                "--eval_batch_size", "3")
    args[args.index("--train_list") + 1], args[args.index("--val_list") + 1] = "train.txt", "test.txt"
    proc = run_script("main.py", *args, cwd=synth)
    assert proc.returncode == 0, proc.stderr
    assert rows(runs / finished.name) == rows(finished)  # finished already: nothing more to do


def test_max_epoch_may_grow_and_the_schedule_is_recomputed(finished, synth, tmp_path):
    runs = copy_run(finished, tmp_path)
    run = runs / finished.name
    one_line_error(run_script("main.py", *argv(synth, runs, finished.name, "--resume", "--max_epoch", "2")),
                   "--max_epoch 2, below the run's 3", "--stop_epoch")
    proc = run_script("main.py", *argv(synth, runs, finished.name, "--resume", "--max_epoch", "5"))
    assert proc.returncode == 0, proc.stderr
    grown = rows(run)
    assert [int(r["epoch"]) for r in grown] == [1, 2, 3, 4, 5] and grown[:3] == rows(finished)
    # the lr after epochs 4 and 5 is that of a 5-epoch warm-up + cosine at those steps
    labels = [e.label for e in read_manifest(synth / "train.txt")]
    steps_per_epoch = len(BalancedBatchSampler(labels, batch_size=8))
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.005)
    sched = build_scheduler(opt, steps_per_epoch=steps_per_epoch, max_epoch=5, warmup_epochs=1)
    expected = {}
    for step in range(1, 5 * steps_per_epoch + 1):
        opt.step()
        sched.step()
        if step % steps_per_epoch == 0:
            expected[step // steps_per_epoch] = opt.param_groups[0]["lr"]
    for row in grown[3:]:
        assert float(row["lr"]) == pytest.approx(expected[int(row["epoch"])], rel=1e-5)
    assert float(grown[2]["lr"]) != pytest.approx(expected[3], rel=1e-3)  # the old schedule had ended at lr/100
    assert f"--max_epoch 3 -> 5: the warm-up + cosine schedule is recomputed for 5 epochs from the stored step " \
           f"{3 * steps_per_epoch}" in (run / "train.log").read_text()
    assert load_checkpoint(run / "checkpoint_last.pth")["options"]["max_epoch"] == 5


def test_resume_without_a_checkpoint_starts_from_scratch(synth, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    run = runs / "requeued"
    import scripts.training.training as training

    def killed(*args):
        raise KeyboardInterrupt  # as if the job were killed in its first epoch

    with monkeypatch.context() as patch:
        patch.setattr(training, "train_one_epoch", killed)
        proc = run_script("main.py", *argv(synth, runs, "requeued", "--seed", "4"))
    assert proc.returncode == 130 and (run / "config.json").is_file()
    assert not (run / "checkpoint_last.pth").exists()
    assert run_script("main.py", *argv(synth, runs, "requeued", "--seed", "4", "--resume")).returncode == 0
    assert run_script("main.py", *argv(synth, runs, "never_started", "--seed", "4", "--resume")).returncode == 0
    assert rows(run) == rows(runs / "never_started")  # the same run as one started afresh
    log = (run / "train.log").read_text()
    assert log.count("starting ") == 2 and "--resume: no checkpoint_last.pth yet, so the run starts from scratch" in log
    # a run started from --pretrained_ckpt and killed in its first epoch: --resume alone would start it from
    # random weights, so it asks for the flag again (a requeue script passing its flags restarts it as it began)
    (runs / "tuned").mkdir()
    (runs / "tuned" / "config.json").write_text('{"options": {"pretrained_ckpt": "data/published/MATE_base.pkl"}}')
    one_line_error(run_script("main.py", *argv(synth, runs, "tuned", "--resume")),
                   "started from --pretrained_ckpt data/published/MATE_base.pkl",
                   "--resume --pretrained_ckpt data/published/MATE_base.pkl")


def test_resume_refuses_features_made_otherwise(tmp_path):
    """The same list path, but its features were made again with 96 channels since the run started."""
    data, runs = tmp_path / "data", tmp_path / "runs"
    make_synthetic(data, n_train=16, n_test=8, seed=0, progress=False)
    assert run_script("main.py", *argv(data, runs, "r", "--max_epoch", "1")).returncode == 0
    make_synthetic(data, n_train=16, n_test=8, seed=0, feature_dim=96, progress=False)
    one_line_error(run_script("main.py", *argv(data, runs, "r", "--max_epoch", "1", "--resume")),
                   "--resume on features whose shape is [96, 16, 10, 10]", "trained on [192, 16, 10, 10]")


# --- options and checkpoints refused in one line -----------------------------------------------------------

@pytest.mark.parametrize("flag, value, needle", [
    ("--max_epoch", "0", "--max_epoch: must be at least 1, got 0"), ("--max_epoch", "-2", "got -2"),
    ("--lr", "nan", "argument --lr: must be a finite number, got 'nan'"), ("--lr", "inf", "got 'inf'"),
    ("--lr", "-0.1", "got -0.1"), ("--weight_decay", "-1", "--weight_decay: must be a finite number >= 0"),
    ("--batch_size", "1", "--batch_size: must be an even number >= 2"), ("--batch_size", "0", "got 0"),
    ("--warmup_epochs", "-1", "--warmup_epochs"), ("--stop_epoch", "0", "--stop_epoch")])
def test_bad_training_options_write_nothing(synth, tmp_path, flag, value, needle):
    one_line_error(run_script("main.py", *argv(synth, tmp_path / "runs", "bad", flag, value)), needle)
    assert not (tmp_path / "runs").exists()


def test_checkpoint_of_other_shapes_is_one_line(finished, synth, tmp_path):
    runs = copy_run(finished, tmp_path)
    run = runs / finished.name
    for name in ("checkpoint_last.pth", "checkpoint_best.pth"):
        state = torch.load(run / name, weights_only=True)
        key = next(k for k, v in state["model"].items() if v.ndim == 2)
        shape = list(state["model"][key].shape)
        state["model"][key] = torch.zeros(shape[0] + 1, shape[1])
        torch.save(state, run / name)
    wrong = f"{key} [{shape[0] + 1}, {shape[1]}] (expected [{shape[0]}, {shape[1]}])"
    one_line_error(run_script("main.py", *argv(synth, runs, finished.name, "--resume", "--max_epoch", "4")),
                   "checkpoint_last.pth: its weights do not fit", wrong)
    one_line_error(run_script("test.py", "--test_list", synth / "test.txt", "--checkpoint", run / "checkpoint_best.pth",
                              "--out_dir", tmp_path / "eval", "--no_progress"),
                   "checkpoint_best.pth: weights do not match the stored model config", wrong)
    assert not (tmp_path / "eval").exists()


# --- a full disk -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("failing", ["checkpoint", "metrics.csv"])
def test_full_disk_mid_run_is_one_line_and_keeps_the_previous_epoch(synth, tmp_path, monkeypatch, failing):
    runs = tmp_path / "runs"
    run = runs / "full"
    calls = []

    def no_space(real):
        def write(*args, **kwargs):
            if failing == "checkpoint" or Path(args[1]).name == "metrics.csv":  # (state, tmp) / (tmp, target)
                calls.append(args[1])
                if len(calls) > (2 if failing == "checkpoint" else 1):  # in epoch 2: best and last took 2 in epoch 1
                    raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args, **kwargs)
        return write

    with monkeypatch.context() as patch:
        if failing == "checkpoint":
            patch.setattr(torch, "save", no_space(torch.save))
        else:
            patch.setattr(os, "replace", no_space(os.replace))
        proc = run_script("main.py", *argv(synth, runs, "full"))
    line = one_line_error(proc, f"no space left on the device that holds {run} ", "files already there are unchanged")
    assert line.startswith(f"error: {run}/checkpoint_" if failing == "checkpoint" else f"error: {run}/metrics.csv: ")
    assert load_checkpoint(run / "checkpoint_last.pth")["epoch"] == (1 if failing == "checkpoint" else 2)
    assert [int(r["epoch"]) for r in rows(run)] == [1]  # the previous metrics.csv, whole
    assert temps(run) == [] and (run / ".mate.lock").read_text() == ""
    # room again: the run continues from its last checkpoint
    assert run_script("main.py", *argv(synth, runs, "full", "--resume")).returncode == 0
    assert [int(r["epoch"]) for r in rows(run)] == list(range(1, EPOCHS + 1))
