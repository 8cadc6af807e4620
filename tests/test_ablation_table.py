"""The ablation table: every row on every fold (tiny budget: 2 folds, 2 epochs, seed 0) through main.py and
test.py as ablations.sh runs them, then aggregate.py --table; the table's numbers are the runs' own, and
rows over several seeds are paired with the full model run for run (Wilcoxon)."""
import csv
import json

import numpy as np
import pytest

from scripts.core.errors import MateError
from scripts.evaluation.ablation_rows import docs_list, read_row, table_rows
from scripts.evaluation.ablation_table import build_table, row_key, table_records
from scripts.evaluation.aggregation import compare, load_run
from tests.conftest import ROOT, run_script
from tests.test_aggregate import make_run, video_list

ROWS = table_rows()  # in the table's order
CONFIGS = {r.key: r.config for r in ROWS}


@pytest.fixture(scope="module")
def table_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("abl")
    assert run_script("makelist.py", "--synthetic", root / "syn", "--n_train", "24", "--n_test", "12",
                      "--feature_dim", "16", "--seed", "1").returncode == 0
    assert run_script("StratifiedKFold.py", "--rgb_list", root / "syn/train.txt", "--test_list",
                      root / "syn/test.txt", "--k", "2", "--out_dir", root / "folds").returncode == 0
    for row, cfg in CONFIGS.items():
        for fold in (0, 1):
            name = f"t_{row}_s0_fold{fold}"
            done = run_script("main.py", "--config", cfg, "--train_list", root / f"folds/fold{fold}_train.txt",
                              "--val_list", root / f"folds/fold{fold}_val.txt", "--max_epoch", "1",
                              "--batch_size", "4", "--runs_dir", root / "runs", "--exp_name", name, "--no_progress",
                              "--no_plots")
            assert done.returncode == 0, (row, done.stderr)
            done = run_script("test.py", "--test_list", root / f"folds/fold{fold}_test.txt", "--checkpoint",
                              root / "runs" / name / "checkpoint_best.pth", "--no_progress", "--no_plots",
                              "--n_boot", "20")
            assert done.returncode == 0, (row, done.stderr)
    return root


def test_every_config_is_a_row_and_the_docs_list_them(tmp_path):
    """The rows are the configs' own "_row" declarations: every file of configs/ablations/ is one, with a
    change (remove, add or set) and the words of its part; docs/model.md holds the list they make."""
    assert {p.stem for p in (ROOT / "configs/ablations").glob("*.json")} | {"full", "mil"} == set(CONFIGS)
    changes = [r.change for r in ROWS]
    assert changes[0] == "none" and changes[1:] == sorted(changes[1:], key=("remove", "add", "set").index)
    assert {"remove", "add", "set"} <= set(changes)  # a part added has its row as a part removed does
    assert docs_list(table_rows()) in (ROOT / "docs/model.md").read_text(), \
        "docs/model.md's list of rows differs from the configs': paste `python -m scripts.evaluation.ablation_rows --docs`"
    assert row_key("x_tcc_gating") == "tcc_gating" and row_key("abl_mil_dropout") == "mil_dropout"
    # the row of older tables (the full model's TCC was plain then) is still read from old run folders
    assert row_key("abl_tcc_multiscale_gating") == "tcc_multiscale_gating" and row_key("a_num_heads_1") == "num_heads_1"
    assert row_key("abl_no_motion") == "no_motion" and row_key("abl_no_motion_map") == "no_motion_map"
    for bad, fault in (({"extends": "../fast.json"}, "needs \"_row\""),
                       ({"_row": {"change": "swap", "part": "x"}}, "needs \"_row\""),
                       ({"_row": {"change": "add", "part": "x", "rank": 1}}, "unknown key\\(s\\) rank")):
        (tmp_path / "r.json").write_text(json.dumps(bad))
        with pytest.raises(MateError, match=f"r.json: .*{fault}"):
            read_row(tmp_path / "r.json")


@pytest.mark.slow  # make test-slow (make test stays under 90 s on 2 cores)
def test_table_numbers_are_the_runs_numbers(table_runs):
    runs = sorted((table_runs / "runs").glob("t_*_s0_fold*"))
    out = table_runs / "table.csv"
    done = run_script("aggregate.py", "--table", *runs, "--out", out, "--n_boot", "50")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("| Change | Part | # Params |")
    with open(out, newline="") as f:
        records = {r["row"]: r for r in csv.DictReader(f)}
    assert list(records) == [r.key for r in ROWS]
    assert [records[r.key]["change"] for r in ROWS] == [r.change for r in ROWS]
    for key, record in records.items():
        aucs = [json.loads((table_runs / f"runs/t_{key}_s0_fold{k}/test_metrics.json").read_text())["roc_auc"]
                for k in (0, 1)]
        mean, std = np.mean(aucs), np.std(aucs, ddof=1)
        assert record["test_roc_auc"] == f"{mean:.4f} ± {std:.4f}", key
        assert (record["seeds"], record["folds"], record["runs"]) == ("1", "2", "2")
        assert (record["delta_roc_auc"] == "") == (key == "full") == (record["pairs"] == "")
        if key != "full":
            assert record["pairs"] == "2" and record["wilcoxon_p"] != ""
    assert int(records["mil"]["parameters"]) > int(records["full"]["parameters"]) > int(records["no_tcc"]["parameters"])
    assert out.with_suffix(".md").read_text().count("\n") == len(ROWS) + 2
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # make test-slow (make test stays under 90 s on 2 cores)
def test_missing_rows_are_reported(table_runs):
    runs = sorted((table_runs / "runs").glob("t_full_s0_fold*")) + sorted((table_runs / "runs").glob("t_no_tcc_s0_fold*"))
    (table_runs / "runs/t_no_tcc_s0_fold1/test_metrics.json").rename(table_runs / "kept.json")
    try:
        done = run_script("aggregate.py", "--table", *runs, "--out", table_runs / "partial.csv", "--n_boot", "20")
    finally:
        (table_runs / "kept.json").rename(table_runs / "runs/t_no_tcc_s0_fold1/test_metrics.json")
    assert done.returncode == 1
    missing = [line for line in done.stdout.splitlines() if line.startswith("missing: ")]
    assert any("t_no_tcc_s0_fold1/test_metrics.json: missing; run test.py" in line for line in missing)
    assert sum("no tested runs" in line for line in missing) == len(ROWS) - 2
    assert "| remove | TCC (removed) | " in done.stdout and "| 1 × 1 |" in done.stdout  # the row with its one tested fold


def test_no_tested_row_is_one_line_and_writes_nothing(tmp_path):
    done = run_script("aggregate.py", "--table", tmp_path / "nothing_here", "--out", tmp_path / "t.csv")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "no tested run of any row" in done.stderr and not (tmp_path / "t.csv").exists()


def test_rows_over_seeds_are_paired_run_for_run(tmp_path):
    """Full model on 3 seeds x 2 folds, one published-choice row on the same six (seed, fold) pairs and
    always worse: all six paired differences are positive for full, so the row's paired ΔROC-AUC is
    the mean of its six differences and the exact Wilcoxon p is 2 / 2^6; a row on seed 0 alone pairs
    two runs; old `_fold<k>` folders of the plain-TCC era still make their row."""
    _, labels, _ = video_list()
    rng = np.random.default_rng(0)
    aucs = {}
    for row, sep, seeds in (("full", 2.5, (0, 1, 2)), ("dropout_04", 0.3, (0, 1, 2)), ("no_tcc", 1.0, (0,))):
        for seed in seeds:
            for fold in (0, 1):
                path = make_run(tmp_path, f"abl_{row}_s{seed}_fold{fold}", rng.normal(size=labels.size) + sep * labels)
                aucs[row, seed, fold] = json.loads((path / "test_metrics.json").read_text())["roc_auc"]
    make_run(tmp_path, "abl_tcc_multiscale_gating_fold0", labels + 0.0)
    rows, problems = build_table(sorted(tmp_path.glob("abl_*")), n_boot=20, seed=0)
    records = {r["row"]: r for r in table_records(rows)}
    dropout = records["dropout_04"]
    assert (dropout["seeds"], dropout["folds"], dropout["runs"], dropout["pairs"]) == (3, 2, 6, 6)
    deltas = [aucs["dropout_04", s, f] - aucs["full", s, f] for s in (0, 1, 2) for f in (0, 1)]
    assert dropout["paired_delta_roc_auc"] == f"{np.mean(deltas):+.4f}" and max(deltas) < 0
    assert dropout["wilcoxon_p"] == f"{2 / 64:.3g}"
    assert (records["no_tcc"]["seeds"], records["no_tcc"]["pairs"]) == (1, 2)
    # the one-seed row's ensemble meets the full model's seed-0 ensemble only
    seed0 = [load_run(tmp_path / f"abl_full_s0_fold{f}") for f in (0, 1)]
    no_tcc = [load_run(tmp_path / f"abl_no_tcc_s0_fold{f}") for f in (0, 1)]
    expected = compare(no_tcc, seed0, n_boot=20, seed=0)
    assert records["no_tcc"]["delta_roc_auc"] == f"{expected['roc_auc_a'] - expected['roc_auc_b']:+.4f}"
    assert records["tcc_multiscale_gating"]["runs"] == 1
    assert not any("tcc_multiscale_gating" in line for line in problems)
    assert any(line.startswith("row 'no_attention'") for line in problems)
