"""scripts.evaluation.aggregation and scripts.evaluation.aggregation_report on fake run folders (mean ± std, pooled CI,
paired comparison), and aggregate.py's CLI: its CSV, its text and its one-line errors."""
import csv
import math
import json
from pathlib import Path

import numpy as np
from scipy import stats
import pytest
from sklearn.metrics import roc_auc_score

from scripts.evaluation.aggregation import (best_validation, compare, default_out, experiment_name, experiment_summary,
                                              fold_ensemble, load_run,
                                 mean_std, pair_runs, pooled, read_predictions)
from scripts.evaluation.aggregation_report import CSV_FIELDS, comparison_rows, format_comparison, to_csv
from scripts.core.errors import MateError
from tests.conftest import run_script

N_TEST = 60


def video_list(n: int = N_TEST, seed: int = 0):
    """A fixed test list: names, labels (both classes) and classes."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.5).astype(int)
    labels[:2], labels[2:4] = 1, 0
    names = [f"{'Arson' if y else 'Normal_Videos_'}{i:03d}_x264" for i, y in enumerate(labels)]
    classes = ["Arson" if y else "Normal" for y in labels]
    return names, labels, classes


def make_run(root: Path, name: str, scores, *, val=(0.8, 0.7, 12), write_val_in_json=True,
             videos=None, header="video,label,class,score") -> Path:
    """A run folder as main.py + test.py leave it: metrics.csv, test_metrics.json, predictions.csv."""
    names, labels, classes = videos or video_list()
    scores = np.asarray(scores, dtype=float)
    folder = root / name
    folder.mkdir(parents=True)
    val_roc, val_pr, best_epoch = val
    rows = ["epoch,loss,loss_bce,loss_triplet,lr,val_roc_auc,val_pr_auc,seconds"]
    for epoch in range(1, 21):  # the best epoch carries val_roc; the others are lower
        roc, pr = (val_roc, val_pr) if epoch == best_epoch else (val_roc - 0.05, val_pr - 0.05)
        rows.append(f"{epoch},0.5,0.4,0.1,0.001,{roc},{pr},1.5")
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    test_metrics = {"roc_auc": float(roc_auc_score(labels, scores)), "pr_auc": 0.5,
                    "roc_auc_ci": [0.0, 1.0], "pr_auc_ci": [0.0, 1.0], "n_videos": len(names)}
    if write_val_in_json:
        test_metrics.update(best_epoch=best_epoch, val_roc_auc=val_roc, val_pr_auc=val_pr)
    (folder / "test_metrics.json").write_text(json.dumps(test_metrics))
    lines = [header] + [f"{v},{y},{c},{float(s)!r}" for v, y, c, s in zip(names, labels, classes, scores)]
    (folder / "predictions.csv").write_text("\n".join(lines) + "\n")
    return folder


def experiment(root: Path, exp: str, separation: float, k: int = 3, seed: int = 0) -> list[Path]:
    """k folds of one experiment on the shared test list; anomalies score `separation` higher."""
    _, labels, _ = video_list()
    rng = np.random.default_rng(seed)
    return [make_run(root, f"{exp}_fold{i}", 1 / (1 + np.exp(-(rng.normal(size=labels.size) + separation * labels))),
                     val=(0.7 + 0.05 * i, 0.6 + 0.02 * i, 5 + i)) for i in range(k)]


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_mean_std_pooled_and_csv(tmp_path):
    runs = experiment(tmp_path, "mate", separation=1.5)
    proc = run_script("aggregate.py", "--runs", *runs, "--n_boot", "200")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "mate_fold0" in out and "mean ± std (n=3)" in out and "pooled test ROC-AUC" in out
    assert "note: 120 predictions repeat a video scored by another run" in out  # 3 folds x 60 videos, 60 distinct
    rows = read_rows(tmp_path / "aggregate_mate.csv")
    assert [r["kind"] for r in rows] == ["run", "run", "run", "mean", "std", "ci_low", "ci_high", "pooled"]
    tests = [json.loads((r / "test_metrics.json").read_text())["roc_auc"] for r in runs]
    mean, std, low, high = rows[3:7]
    assert float(mean["test_roc_auc"]) == pytest.approx(np.mean(tests), abs=1e-12)
    assert mean["test_video_roc_auc"] == mean["test_roc_auc"]  # level-named, and under the older name
    assert float(std["test_roc_auc"]) == pytest.approx(np.std(tests, ddof=1), abs=1e-12)
    half = stats.t.ppf(0.975, 2) * np.std(tests, ddof=1) / np.sqrt(3)  # the t-interval over the 3 runs
    assert float(low["test_video_roc_auc"]) == pytest.approx(np.mean(tests) - half, abs=1e-12)
    assert float(high["test_video_roc_auc"]) == pytest.approx(np.mean(tests) + half, abs=1e-12)
    assert float(mean["val_roc_auc"]) == pytest.approx(np.mean([0.7, 0.75, 0.8]))
    assert float(mean["val_video_roc_auc"]) == pytest.approx(np.mean([0.7, 0.75, 0.8]))
    assert (mean["seeds"], mean["folds"]) == ("1", "3")
    assert "95% CI of the mean" in out and "test video ROC-AUC" in out
    assert [r["best_epoch"] for r in rows[:3]] == ["5", "6", "7"]
    pooled = rows[7]
    assert pooled["n"] == "180"
    assert float(pooled["roc_ci_low"]) < float(pooled["test_roc_auc"]) < float(pooled["roc_ci_high"])


def test_validation_from_metrics_csv_and_one_run(tmp_path):
    _, labels, _ = video_list()
    folder = make_run(tmp_path, "solo", labels + 0.1, val=(0.9, 0.85, 4), write_val_in_json=False)
    run = load_run(folder)
    assert (run.best_epoch, run.val_roc_auc, run.val_pr_auc) == (4, 0.9, 0.85)
    assert run.test_roc_auc == 1.0
    assert mean_std([run.test_roc_auc]) == (1.0, 0.0)


def test_compare_clearly_better_experiment(tmp_path):
    good = experiment(tmp_path, "mate", separation=2.5, seed=1)
    weak = experiment(tmp_path, "nomotion", separation=0.0, seed=2)
    # the weak experiment's last fold misses two test videos; its other folds scored them, so the
    # fold ensemble still covers every video and none drops out of the comparison
    (weak[2] / "predictions.csv").write_text("\n".join(
        (weak[2] / "predictions.csv").read_text().splitlines()[:-2]) + "\n")
    out_csv = tmp_path / "cmp.csv"
    proc = run_script("aggregate.py", "--runs", *good, "--compare", *weak, "--n_boot", "500", "--out", out_csv)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "comparison mate vs nomotion" in out and "DeLong" in out and "paired bootstrap" in out
    assert f"on {N_TEST} common test videos; dropped 0 only in mate, 0 only in nomotion" in out
    rows = {(r["kind"], r["name"]): r for r in read_rows(out_csv)}
    delong = rows[("delong", "mate vs nomotion")]
    boot = rows[("paired_bootstrap", "mate vs nomotion")]
    assert float(delong["delta_roc_auc"]) > 0.3 and float(delong["p_value"]) < 0.01
    assert float(boot["p_value"]) < 0.01 and float(boot["delta_ci_low"]) > 0
    fold_deltas = [float(r["delta_roc_auc"]) for (kind, _), r in rows.items() if kind == "fold_delta"]
    assert len(fold_deltas) == 3
    assert float(rows[("fold_delta_mean", "mate vs nomotion")]["delta_roc_auc"]) == pytest.approx(np.mean(fold_deltas))
    assert float(rows[("fold_delta_std", "mate vs nomotion")]["delta_roc_auc"]) == pytest.approx(
        np.std(fold_deltas, ddof=1))


def test_compare_uses_fold_ensemble_and_reports_dropped(tmp_path):
    names, labels, classes = video_list()
    a = [make_run(tmp_path, f"a_fold{i}", labels * 0.5 + s) for i, s in enumerate((0.1, 0.3))]
    keep = slice(5, None)  # b lacks the first five videos
    b = [make_run(tmp_path, "b_fold0", np.full(N_TEST - 5, 0.5),
                  videos=(names[keep], labels[keep], classes[keep]))]
    result = compare([load_run(p) for p in a], [load_run(p) for p in b], n_boot=50, seed=0)
    assert (result["n_common"], result["dropped_a"], result["dropped_b"]) == (N_TEST - 5, 5, 0)
    assert result["roc_auc_a"] == 1.0 and result["roc_auc_b"] == 0.5
    # fold 0 is the one (seed, fold) pair both have: the comparison pairs it and leaves fold 1 out
    assert [(a_, b_) for a_, b_, _ in result["fold_deltas"]] == [("a_fold0", "b_fold0")]


def test_pair_runs_by_fold_number(tmp_path):
    a = [load_run(p) for p in experiment(tmp_path, "a", 1.0, k=3)]
    b = [load_run(p) for p in experiment(tmp_path, "b", 1.0, k=3)]
    pairs = pair_runs(a, list(reversed(b)))
    assert [(x.name, y.name) for x, y in pairs] == [("a_fold0", "b_fold0"), ("a_fold1", "b_fold1"),
                                                    ("a_fold2", "b_fold2")]


def test_no_common_video_and_bad_predictions(tmp_path):
    names, labels, classes = video_list()
    a = make_run(tmp_path, "a_fold0", labels + 0.1)
    b = make_run(tmp_path, "b_fold0", labels + 0.1, videos=([n + "_other" for n in names], labels, classes))
    with pytest.raises(MateError, match="no test video in common"):
        compare([load_run(a)], [load_run(b)], n_boot=10, seed=0)
    c = make_run(tmp_path, "c_fold0", labels + 0.1, header="video,label,class,prob")
    with pytest.raises(MateError, match=r"predictions.csv: missing column\(s\) score"):
        load_run(c)
    proc = run_script("aggregate.py", "--runs")
    assert (proc.returncode, proc.stderr) == (2, "error: no runs given: pass --runs runs/<exp_name>_fold*\n")


def test_refuses_to_overwrite(tmp_path):
    runs = experiment(tmp_path, "mate", 1.0, k=1)
    (tmp_path / "aggregate_mate.csv").write_text("old\n")
    refused = run_script("aggregate.py", "--runs", runs[0], "--n_boot", "10")
    assert refused.returncode == 2 and "already exists; pass --overwrite" in refused.stderr
    assert (tmp_path / "aggregate_mate.csv").read_text() == "old\n"
    assert run_script("aggregate.py", "--runs", runs[0], "--n_boot", "10", "--overwrite").returncode == 0
    assert read_rows(tmp_path / "aggregate_mate.csv")[0]["name"] == "mate_fold0"


def test_cli_missing_file_is_one_line_exit_2(tmp_path):
    runs = experiment(tmp_path, "mate", 1.0, k=2)
    (runs[1] / "predictions.csv").unlink()
    proc = run_script("aggregate.py", "--runs", *runs, "--n_boot", "10")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "mate_fold1/predictions.csv: missing; run test.py" in proc.stderr
    assert not (tmp_path / "aggregate_mate.csv").exists()


def test_experiment_name_mean_std_and_default_out(tmp_path):
    assert experiment_name("mate_fast_fold3") == "mate_fast" and experiment_name("abl-fold-12") == "abl"
    assert experiment_name("fold0") == "fold0"  # nothing left without the suffix: the name itself
    assert experiment_name("hard_tcc_plain_s2_fold4") == "hard_tcc_plain" == experiment_name("hard_tcc_plain_fold4")
    assert experiment_name("fast_s0_fold0") == "fast" and experiment_name("mates_fold1") == "mates"
    mean, std = mean_std([0.7, math.nan, None, 0.9])  # non-finite and missing values are skipped
    assert mean == pytest.approx(0.8) and std == pytest.approx(math.sqrt(0.02))
    assert all(math.isnan(v) for v in mean_std([math.nan]))
    assert default_out([tmp_path / "mate_fold0"], None) == tmp_path / "aggregate_mate.csv"
    assert default_out([tmp_path / "mate_fold0"], [tmp_path / "nomotion_fold2"]) == \
        tmp_path / "aggregate_mate_vs_nomotion.csv"


def test_best_validation_earliest_best_and_epochs_without_validation(tmp_path):
    path = tmp_path / "metrics.csv"
    assert best_validation(path) is None
    path.write_text("epoch,loss,val_roc_auc,val_pr_auc\n1,0.9,,\n2,0.8,0.8,0.6\n3,0.7,0.8,0.7\n4,0.6,0.7,0.9\n")
    assert best_validation(path) == (2, 0.8, 0.6)  # epoch 3 ties epoch 2: training kept the first
    path.write_text("epoch,loss,val_roc_auc,val_pr_auc\n1,0.9,high,0.5\n")
    with pytest.raises(MateError, match=r"metrics.csv:2: epoch or validation AUC is not a number"):
        best_validation(path)


@pytest.mark.parametrize("rows, fault", [
    (["a,1,X,0.5", "b,2,X,0.5"], r"predictions.csv:3: label '2' is not 0 or 1"),
    (["a,1,X,0.5", "b,0,N,nan"], r"predictions.csv:3: score is nan"),
    (["a,1,X,0.5", "a,0,N,0.1"], r"video 'a' appears more than once"),
    (["a,1,X,0.5", "b,1,X,0.1"], r"only one class \(all labels 1\)"),
])
def test_read_predictions_names_the_fault(tmp_path, rows, fault):
    path = tmp_path / "predictions.csv"
    path.write_text("\n".join(["video,label,class,score", *rows]) + "\n")
    with pytest.raises(MateError, match=fault):
        read_predictions(path)


def test_fold_ensemble_and_pooled_counts(tmp_path):
    videos = (["n1", "n2", "a1", "a2"], np.array([0, 0, 1, 1]), ["Normal", "Normal", "Arson", "Arson"])
    r0 = load_run(make_run(tmp_path, "x_fold0", [0.1, 0.5, 0.3, 0.9], videos=videos))
    r1 = load_run(make_run(tmp_path, "x_fold1", [0.3, 0.1, 0.7, 0.5], videos=videos))
    ensemble = fold_ensemble([r0, r1])
    assert ensemble == {"n1": (0, pytest.approx(0.2)), "n2": (0, pytest.approx(0.3)),
                        "a1": (1, pytest.approx(0.5)), "a2": (1, pytest.approx(0.7))}
    p = pooled([r0, r1], n_boot=50, seed=0)
    assert (p["n"], p["n_videos"], p["n_repeated"]) == (8, 4, 4)
    # pooled: of the 16 (anomalous, normal) score pairs 13 are ordered right and two tie (0.3, 0.5)
    assert p["roc_auc"] == pytest.approx(14 / 16)
    flipped = (videos[0], np.array([1, 0, 1, 1]), videos[2])
    r2 = load_run(make_run(tmp_path, "x_fold2", [0.1, 0.5, 0.3, 0.9], videos=flipped))
    with pytest.raises(MateError, match="video 'n1' has label 1, but .*x_fold0/predictions.csv gives 0"):
        fold_ensemble([r0, r2])


def test_seeded_runs_pair_by_seed_and_fold_with_the_wilcoxon_test(tmp_path):
    """run_folds.sh's <exp>_s<seed>_fold<k>: one experiment over seeds x folds, paired with another on the
    (seed, fold) pairs both have; a always beats b here, so all 6 differences are positive: the exact
    signed-rank p is 2 / 2^6."""
    _, labels, _ = video_list()
    rng = np.random.default_rng(0)
    for exp, sep in (("a", 2.0), ("b", 0.2)):
        for seed in (0, 1):
            for fold in (0, 1, 2):
                make_run(tmp_path, f"{exp}_s{seed}_fold{fold}", rng.normal(size=labels.size) + sep * labels)
    make_run(tmp_path, "b_s2_fold0", rng.normal(size=labels.size))  # a has no seed 2: left out of the pairs
    runs_a = [load_run(p) for p in sorted(tmp_path.glob("a_s*"))]
    runs_b = [load_run(p) for p in sorted(tmp_path.glob("b_s*"), reverse=True)]
    assert {experiment_name(r.name) for r in runs_a + runs_b} == {"a", "b"}
    pairs = pair_runs(runs_a, runs_b)
    assert [(x.name, y.name) for x, y in pairs][:2] == [("a_s0_fold0", "b_s0_fold0"), ("a_s0_fold1", "b_s0_fold1")]
    assert len(pairs) == 6
    c = compare(runs_a, runs_b, n_boot=20, seed=0)
    assert all(d > 0 for *_, d in c["fold_deltas"])
    assert c["wilcoxon"] == {"n": 6, "n_zero": 0, "w_plus": 21.0, "p_value": pytest.approx(2 / 64)}
    assert "exact Wilcoxon signed-rank p 0.031 (6 non-zero pairs)" in format_comparison(c, n_boot=20)


def test_compare_hand_worked_delong_and_report(tmp_path):
    """Negatives 0.1, 0.4 and positives 0.35, 0.8 (AUC 0.75) against the same videos scored in
    reverse (AUC 0.25): components V10 = (1/2, 1) vs (1/2, 0), V01 = (1, 1/2) vs (0, 1/2); variances
    1/8 each, covariance -1/8, so se = sqrt(1/2) and z = 0.5 / sqrt(1/2)."""
    videos = (["n1", "n2", "a1", "a2"], np.array([0, 0, 1, 1]), ["Normal", "Normal", "Arson", "Arson"])
    a = load_run(make_run(tmp_path, "mate_fold0", [0.1, 0.4, 0.35, 0.8], videos=videos))
    b = load_run(make_run(tmp_path, "abl_fold0", [0.8, 0.35, 0.4, 0.1], videos=videos))
    c = compare([a], [b], n_boot=100, seed=0)
    d = c["delong"]
    assert (c["roc_auc_a"], c["roc_auc_b"], d["delta"]) == (0.75, 0.25, 0.5)
    assert d["se"] == pytest.approx(math.sqrt(0.5)) and d["z"] == pytest.approx(math.sqrt(0.5))
    assert d["p_value"] == pytest.approx(0.479500, abs=1e-6)
    assert d["ci_low"] == pytest.approx(0.5 - 1.959964 * math.sqrt(0.5), abs=1e-6)
    assert c["fold_deltas"] == [("mate_fold0", "abl_fold0", 0.5)]
    text = format_comparison(c, n_boot=100)
    assert "  DeLong:           ΔROC-AUC +0.5000 (95% CI -0.8859 to +1.8859), z 0.707, p 0.48" in text
    assert "    mate_fold0 - abl_fold0: +0.5000" in text
    rows = comparison_rows(c)
    assert [r["kind"] for r in rows] == ["ensemble", "ensemble", "delong", "paired_bootstrap", "fold_delta",
                                         "fold_delta_mean", "fold_delta_std", "wilcoxon_signed_rank"]
    assert (rows[-1]["p_value"], rows[-1]["n"]) == (1.0, 1)  # one pair: every sign pattern is as likely
    lines = to_csv(rows).splitlines()
    assert lines[0] == ",".join(CSV_FIELDS)
    row = dict(zip(CSV_FIELDS, lines[1].split(",")))
    assert (row["experiment"], row["kind"], row["name"], row["n"]) == ("mate vs abl", "ensemble", "mate", "4")
    assert row["test_video_roc_auc"] == row["test_roc_auc"] == "0.75"
    assert row["test_video_pr_auc"] == row["test_pr_auc"] == "0.8333333333333333"
    assert {k for k, v in row.items() if v} == {"experiment", "kind", "name", "n", "test_video_roc_auc",
                                                "test_video_pr_auc", "test_roc_auc", "test_pr_auc"}


@pytest.mark.parametrize("dataset, first", [("XD-Violence", "frame AP"), ("UCF-Crime", "frame ROC-AUC"),
                                            (None, "frame ROC-AUC")])
def test_frame_metrics_mean_std_over_folds(tmp_path, dataset, first):
    """Runs scored with --gt: frame ROC-AUC and AP per run, mean ± std, the benchmark's headline first
    (a run from before XD-Violence support, without 'dataset', is UCF-Crime's)."""
    runs = experiment(tmp_path, "seq", separation=1.5)
    frames = [(0.81, 0.62, 0.60), (0.85, 0.70, 0.68), (0.83, 0.66, 0.64)]  # ROC-AUC, sklearn AP, trapezoidal AP
    for folder, (roc, ap, trap) in zip(runs, frames):
        metrics = json.loads((folder / "test_metrics.json").read_text())
        metrics["frame"] = {"roc_auc": roc, "pr_auc": ap, "frame_ap": trap, **({"dataset": dataset} if dataset else {})}
        (folder / "test_metrics.json").write_text(json.dumps(metrics))
    plain = experiment(tmp_path, "plain", separation=1.5, k=1)[0]  # no frame metrics: nan, left out
    proc = run_script("aggregate.py", "--runs", *runs, plain, "--n_boot", "50", "--out", tmp_path / "a.csv")
    assert proc.returncode == 0, proc.stderr
    rocs, aps, traps = np.array(frames).T
    ms = lambda v: f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"  # noqa: E731
    ap = f"frame AP {ms(traps)} (trapezoidal; average_precision_score {ms(aps)})"
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("frame "))
    assert line.startswith(f"{ap}, frame ROC-AUC {ms(rocs)}" if first == "frame AP"
                           else f"frame ROC-AUC {ms(rocs)}, {ap}")
    assert f"over the 3 of 4 runs with frame metrics; {dataset or 'UCF-Crime'}: {first} is its headline" in line
    rows = read_rows(tmp_path / "a.csv")
    assert [r["frame_pr_auc"] for r in rows[:4]] == ["0.62", "0.7", "0.66", ""]
    assert [r["frame_ap_sklearn"] for r in rows[:4]] == ["0.62", "0.7", "0.66", ""]
    assert [r["frame_ap"] for r in rows[:4]] == ["0.6", "0.68", "0.64", ""]
    mean, std = rows[4], rows[5]
    assert float(mean["frame_pr_auc"]) == pytest.approx(0.66) and float(mean["frame_roc_auc"]) == pytest.approx(0.83)
    assert float(mean["frame_ap"]) == pytest.approx(0.64)
    assert float(std["frame_pr_auc"]) == pytest.approx(np.std([0.62, 0.70, 0.66], ddof=1))


def test_predictions_keep_significant_digits(tmp_path):
    """Quiet videos score around 1e-6 under the authors' checkpoint: 6 decimals printed 0.000002 for all."""
    from types import SimpleNamespace

    from scripts.evaluation.evaluation import predictions_csv
    from scripts.data.manifest import VideoEntry

    ds = SimpleNamespace(entries=[VideoEntry(path=Path(f"v{i}.npy"), label=i % 2, cls="Abuse" if i % 2 else "Normal")
                                  for i in range(3)])
    text = predictions_csv(ds, np.array([2.3456789e-6, 1.7e-6, 0.98765432], dtype=np.float32))
    scores = [line.split(",")[3] for line in text.splitlines()[1:]]
    assert [float(s) for s in scores] == pytest.approx([2.3456789e-6, 1.7e-6, 0.98765432], rel=1e-6)
    assert len(set(scores)) == 3


def test_seeds_times_folds_mean_std_and_ci(tmp_path):
    """run_folds.sh's names <exp>_s<seed>_fold<k>: every figure's mean ± std and t-interval over the 2 x 3
    runs, and the seeds and folds counted."""
    _, labels, _ = video_list()
    rng = np.random.default_rng(1)
    runs = [make_run(tmp_path, f"exp_s{seed}_fold{k}", rng.normal(size=labels.size) + 1.2 * labels,
                     val=(0.7 + 0.01 * (3 * seed + k), 0.6, 5)) for seed in (0, 1) for k in range(3)]
    summary = experiment_summary([load_run(r) for r in runs], n_boot=20, seed=0)
    assert (summary["n_seeds"], summary["n_folds"]) == (2, 3)
    vals = [0.7 + 0.01 * i for i in range(6)]
    assert summary["mean_std"]["val_roc_auc"] == pytest.approx((np.mean(vals), np.std(vals, ddof=1)))
    half = stats.t.ppf(0.975, 5) * np.std(vals, ddof=1) / np.sqrt(6)
    assert summary["ci"]["val_roc_auc"] == pytest.approx((np.mean(vals) - half, np.mean(vals) + half))
    done = run_script("aggregate.py", "--runs", *runs, "--n_boot", "20")
    assert done.returncode == 0 and "6 run(s), 2 seed(s) x 3 fold(s); checkpoints chosen on validation" in done.stdout
