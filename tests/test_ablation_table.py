"""The ablation table: every row on every fold (tiny budget: 2 folds, 2 epochs) through main.py and
test.py as ablations.sh runs them, then aggregate.py --table; the table's numbers are the runs' own."""
import csv
import json

import numpy as np
import pytest

from scripts.ablation_table import LABELS, ROWS, row_key
from tests.conftest import ROOT, run_script

CONFIGS = {"full": ROOT / "configs/fast.json", "mil": ROOT / "configs/mil.json",
           **{p.stem: p for p in sorted((ROOT / "configs/ablations").glob("*.json"))}}


@pytest.fixture(scope="module")
def table_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("abl")
    assert run_script("makelist.py", "--synthetic", root / "syn", "--n_train", "24", "--n_test", "12",
                      "--feature_dim", "16", "--seed", "1").returncode == 0
    assert run_script("StratifiedKFold.py", "--rgb_list", root / "syn/train.txt", "--test_list",
                      root / "syn/test.txt", "--k", "2", "--out_dir", root / "folds").returncode == 0
    for row, cfg in CONFIGS.items():
        for fold in (0, 1):
            name = f"t_{row}_fold{fold}"
            done = run_script("main.py", "--config", cfg, "--train_list", root / f"folds/fold{fold}_train.txt",
                              "--val_list", root / f"folds/fold{fold}_val.txt", "--max_epoch", "2",
                              "--batch_size", "4", "--runs_dir", root / "runs", "--exp_name", name, "--no_progress")
            assert done.returncode == 0, (row, done.stderr)
            done = run_script("test.py", "--test_list", root / f"folds/fold{fold}_test.txt", "--checkpoint",
                              root / "runs" / name / "checkpoint_best.pth", "--no_progress", "--n_boot", "20")
            assert done.returncode == 0, (row, done.stderr)
    return root


def test_every_config_is_a_row():
    assert set(CONFIGS) == set(LABELS)  # a new ablation config needs its row (and label) in the table
    assert row_key("abl_tcc_multiscale_gating") == "tcc_multiscale_gating" and row_key("x_tcc_gating") == "tcc_gating"
    assert row_key("abl_no_motion") == "no_motion" and row_key("abl_no_motion_map") == "no_motion_map"


def test_table_numbers_are_the_runs_numbers(table_runs):
    runs = sorted((table_runs / "runs").glob("t_*_fold*"))
    out = table_runs / "table.csv"
    done = run_script("aggregate.py", "--table", *runs, "--out", out, "--n_boot", "50")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("| Component Removed | # Params |")
    with open(out, newline="") as f:
        records = {r["row"]: r for r in csv.DictReader(f)}
    assert list(records) == [key for key, _ in ROWS]
    for key, record in records.items():
        aucs = [json.loads((table_runs / f"runs/t_{key}_fold{k}/test_metrics.json").read_text())["roc_auc"]
                for k in (0, 1)]
        mean, std = np.mean(aucs), np.std(aucs, ddof=1)
        assert record["test_roc_auc"] == f"{mean:.4f} ± {std:.4f}", key
        assert record["folds"] == "2"
        assert (record["delta_roc_auc"] == "") == (key == "full")
    assert int(records["mil"]["parameters"]) > int(records["full"]["parameters"]) > int(records["no_tcc"]["parameters"])
    assert out.with_suffix(".md").read_text().count("\n") == len(ROWS) + 2
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_missing_rows_are_reported(table_runs):
    runs = sorted((table_runs / "runs").glob("t_full_fold*")) + sorted((table_runs / "runs").glob("t_no_tcc_fold*"))
    (table_runs / "runs/t_no_tcc_fold1/test_metrics.json").rename(table_runs / "kept.json")
    try:
        done = run_script("aggregate.py", "--table", *runs, "--out", table_runs / "partial.csv", "--n_boot", "20")
    finally:
        (table_runs / "kept.json").rename(table_runs / "runs/t_no_tcc_fold1/test_metrics.json")
    assert done.returncode == 1
    missing = [line for line in done.stdout.splitlines() if line.startswith("missing: ")]
    assert any("t_no_tcc_fold1/test_metrics.json: missing; run test.py" in line for line in missing)
    assert sum("no tested runs" in line for line in missing) == len(ROWS) - 2
    assert "| TCC (removed) | " in done.stdout and "| 1 |" in done.stdout  # the row with its one tested fold


def test_no_tested_row_is_one_line_and_writes_nothing(tmp_path):
    done = run_script("aggregate.py", "--table", tmp_path / "nothing_here", "--out", tmp_path / "t.csv")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "no tested run of any row" in done.stderr and not (tmp_path / "t.csv").exists()
