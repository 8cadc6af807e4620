"""run_folds.sh and ablations.sh: the seeds x folds loop, its run names, and a study cut off midway that
finishes only the missing runs when run again. Python is replaced by a recording stand-in (PY), so the
test checks the loop itself in a second; main.py --resume and test.py are tested on their own."""
import os
import stat
import subprocess
import sys

import pytest

from scripts.evaluation.ablation_rows import table_rows
from tests.conftest import ROOT

# Stands in for python: logs "<script> <run>" and the arguments, leaves the files the real scripts
# leave (a checkpoint; test_metrics.json), and exits 255 on the test of $FAIL_RUN, which makes xargs
# stop starting runs, as a killed study would. `python -m module` (ablations.sh reading its rows) runs for real.
FAKE_PYTHON = r"""#!/usr/bin/env bash
if [ "$1" = -m ]; then exec "$REAL_PY" "$@"; fi
script=$1; shift
args="$*"
while [ $# -gt 0 ]; do
  case $1 in --exp_name) run=$2;; --checkpoint) run=$(basename "$(dirname "$2")");; esac; shift
done
echo "$script $run | $args" >> "$LOG"
if [ "$script" = main.py ]; then mkdir -p "$RUNS_DIR/$run" && touch "$RUNS_DIR/$run/checkpoint_best.pth"; fi
if [ "$script" = test.py ]; then
  if [ "$run" = "${FAIL_RUN:-}" ]; then exit 255; fi
  echo '{}' > "$RUNS_DIR/$run/test_metrics.json"
fi
"""


@pytest.fixture
def loop_env(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    for name in ("lists", "my_lists", "L"):  # the fold lists the loop checks for before any run
        (tmp_path / name).mkdir()
        for k in range(2):
            for part in ("train", "val", "test"):
                (tmp_path / name / f"fold{k}_{part}.txt").write_text("")
    return {**os.environ, "PY": str(fake), "REAL_PY": sys.executable, "LOG": str(tmp_path / "log.txt"),
            "RUNS_DIR": str(tmp_path / "runs"), "LISTS_ROOT": str(tmp_path)}


def run_loop(env, lists, *args, **extra):
    return subprocess.run(["bash", str(ROOT / "run_folds.sh"), os.path.join(env["LISTS_ROOT"], lists), *map(str, args)],
                          cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=60)


def calls(env) -> list[str]:
    with open(env["LOG"]) as f:
        lines = [line.split(" | ")[0] for line in f]
    os.remove(env["LOG"])
    return lines


def test_a_study_cut_off_midway_finishes_only_the_missing_runs(loop_env):
    spec = "x=configs/fast.json@0,1"  # seeds 0 and 1; 2 folds
    cut = run_loop(loop_env, "lists", 2, 3, 1, spec, FAIL_RUN="x_s0_fold1")
    assert cut.returncode != 0  # killed: xargs stopped after the third run's test failed
    assert calls(loop_env) == ["main.py x_s0_fold0", "test.py x_s0_fold0", "main.py x_s1_fold0", "test.py x_s1_fold0",
                               "main.py x_s0_fold1", "test.py x_s0_fold1"]
    again = run_loop(loop_env, "lists", 2, 3, 1, spec)
    assert again.returncode == 0, again.stderr
    # the tested runs are skipped; the cut one is continued (main.py --resume) and tested; the last one runs
    assert calls(loop_env) == ["main.py x_s0_fold1", "test.py x_s0_fold1", "main.py x_s1_fold1", "test.py x_s1_fold1"]
    assert "skip x_s0_fold0 (tested)" in again.stdout and "done x_s1_fold1" in again.stdout
    done = run_loop(loop_env, "lists", 2, 3, 1, spec)
    assert done.returncode == 0 and not os.path.exists(loop_env["LOG"])  # nothing left to do: no call at all


def test_main_gets_the_seed_resume_and_the_fold_lists(loop_env):
    assert run_loop(loop_env, "my_lists", 1, 7, 1, "fast=configs/fast.json", SEEDS="3 4").returncode == 0
    with open(loop_env["LOG"]) as f:
        mains = [line.split(" | ")[1].split() for line in f if line.startswith("main.py")]
    assert len(mains) == 2  # SEEDS applies where the spec names none
    for seed, args in zip(("3", "4"), mains):
        given = dict(zip(args[::2], args[1::2]))
        assert given["--seed"] == seed and given["--exp_name"] == f"fast_s{seed}_fold0"
        assert given["--train_list"].endswith("/my_lists/fold0_train.txt") and given["--max_epoch"] == "7"
        assert "--resume" in args and "--overwrite" not in args


def test_ablations_runs_the_deciding_rows_over_their_seeds_first(loop_env, tmp_path):
    done = subprocess.run(["bash", str(ROOT / "ablations.sh"), tmp_path / "lists", "1", "2", "1", "p"], cwd=ROOT,
                          env={**loop_env, "DECIDE_SEEDS": "0 1", "SEEDS": "5"}, capture_output=True, text=True,
                          timeout=60)
    with open(loop_env["LOG"]) as f:
        log = f.read().splitlines()
    runs = [line.split()[1] for line in log if line.startswith("main.py")]
    rows = table_rows()  # the configs' own "_row" declarations
    deciding = [f"p_{r.key}" for r in rows if r.decides]
    assert {"p_full", "p_input_norm_token", "p_video_logit_embedding", "p_dropout_04"} <= set(deciding)
    n = 2 * len(deciding)
    assert sorted(runs[:n]) == sorted(f"{name}_s{s}_fold0" for name in deciding for s in (0, 1))
    assert "p_mil_s5_fold0" in runs[n:] and "p_no_motion_s5_fold0" in runs[n:] and len(runs) == n + len(rows) - n // 2
    assert done.returncode == 0, done.stderr
    table = log[-1].split(" | ")[1].split()  # the glob of the runs, expanded by the shell
    assert log[-1].startswith("aggregate.py") and table[0] == "--table" and len(table) == 1 + len(runs) + 1


def test_gt_and_oracle_reach_test_and_main(loop_env):
    """make benchmark's GT=... ORACLE=1: test.py --gt, main.py --oracle_test_list <fold test list> --oracle_gt."""
    assert run_loop(loop_env, "L", 1, 2, 1, "b=configs/fast.json", GT="gt.txt", ORACLE="1").returncode == 0
    with open(loop_env["LOG"]) as f:
        logged = {line.split(" | ")[0].split()[0]: line.split(" | ")[1].split() for line in f}
    value = lambda script, flag: logged[script][logged[script].index(flag) + 1]  # noqa: E731
    assert value("main.py", "--oracle_test_list").endswith("/L/fold0_test.txt")
    assert value("main.py", "--oracle_gt") == "gt.txt"
    assert value("test.py", "--gt") == "gt.txt"
    os.remove(loop_env["LOG"])
    run_loop(loop_env, "L", 1, 2, 1, "c=configs/fast.json")  # neither: neither flag
    with open(loop_env["LOG"]) as f:
        assert not any("--gt" in line or "--oracle" in line for line in f)


@pytest.mark.parametrize("args, message", [
    (("lists", 0, 3, 1, "x=configs/fast.json"), "FOLDS must be a whole number >= 1, got '0'"),
    (("lists", 2, "abc", 1, "x=configs/fast.json"), "EPOCHS must be a whole number >= 1, got 'abc'"),
    (("lists", 2, 3, "0", "x=configs/fast.json"), "JOBS must be a whole number >= 1, got '0'"),
    (("lists", 3, 3, 1, "x=configs/fast.json"), "lists/fold2_train.txt: not found (FOLDS=3;"),
    (("nowhere", 1, 3, 1, "x=configs/fast.json"), "nowhere/fold0_train.txt: not found"),
    (("lists", 2, 3, 1, "configs/fast.json"), "'configs/fast.json' is not NAME=CONFIG[@SEEDS]"),
    (("lists", 2, 3, 1, "../up=configs/fast.json"), "NAME '../up' is not a plain folder name"),
    (("lists", 2, 3, 1, "=configs/fast.json"), "NAME '' is not a plain folder name"),
    (("lists", 2, 3, 1, "x=configs/none.json"), "config configs/none.json not found"),
    (("lists", 2, 3, 1, "x=configs/fast.json@0,a"), "seed 'a' is not a whole number"),
])
def test_every_value_is_checked_once_before_any_run(loop_env, args, message):
    """Issue #31 items 6 and 18: one line and exit 2 before any run, never one error per run."""
    done = run_loop(loop_env, *args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert done.stderr.startswith("error: run_folds.sh: ") and not os.path.exists(loop_env["LOG"])


def test_ablations_with_a_bad_value_is_one_line(loop_env, tmp_path):
    done = subprocess.run(["bash", str(ROOT / "ablations.sh"), tmp_path / "lists", "0", "2", "1", "p"], cwd=ROOT,
                          env=loop_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr == "error: run_folds.sh: FOLDS must be a whole number >= 1, got '0'\n"
