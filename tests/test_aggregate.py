"""aggregate.py on fake run folders: mean ± std, pooled CI, paired comparison, one-line errors."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import aggregate
from scripts.errors import MateError
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


def test_mean_std_pooled_and_csv(tmp_path, capsys):
    runs = experiment(tmp_path, "mate", separation=1.5)
    assert aggregate.main(["--runs", *map(str, runs), "--n_boot", "200"]) == 0
    out = capsys.readouterr().out
    assert "mate_fold0" in out and "mean ± std (n=3)" in out and "pooled test ROC-AUC" in out
    assert "note: 120 predictions repeat a video scored by another run" in out  # 3 folds x 60 videos, 60 distinct
    rows = read_rows(tmp_path / "aggregate_mate.csv")
    assert [r["kind"] for r in rows] == ["run", "run", "run", "mean", "std", "pooled"]
    tests = [json.loads((r / "test_metrics.json").read_text())["roc_auc"] for r in runs]
    mean, std = rows[3], rows[4]
    assert float(mean["test_roc_auc"]) == pytest.approx(np.mean(tests), abs=1e-12)
    assert float(std["test_roc_auc"]) == pytest.approx(np.std(tests, ddof=1), abs=1e-12)
    assert float(mean["val_roc_auc"]) == pytest.approx(np.mean([0.7, 0.75, 0.8]))
    assert [r["best_epoch"] for r in rows[:3]] == ["5", "6", "7"]
    pooled = rows[5]
    assert pooled["n"] == "180"
    assert float(pooled["roc_ci_low"]) < float(pooled["test_roc_auc"]) < float(pooled["roc_ci_high"])


def test_validation_from_metrics_csv_and_one_run(tmp_path):
    _, labels, _ = video_list()
    folder = make_run(tmp_path, "solo", labels + 0.1, val=(0.9, 0.85, 4), write_val_in_json=False)
    run = aggregate.load_run(folder)
    assert (run.best_epoch, run.val_roc_auc, run.val_pr_auc) == (4, 0.9, 0.85)
    assert run.test_roc_auc == 1.0
    assert aggregate.mean_std([run.test_roc_auc]) == (1.0, 0.0)


def test_compare_clearly_better_experiment(tmp_path, capsys):
    good = experiment(tmp_path, "mate", separation=2.5, seed=1)
    weak = experiment(tmp_path, "nomotion", separation=0.0, seed=2)
    # the weak experiment's last fold misses two test videos; its other folds scored them, so the
    # fold ensemble still covers every video and none drops out of the comparison
    (weak[2] / "predictions.csv").write_text("\n".join(
        (weak[2] / "predictions.csv").read_text().splitlines()[:-2]) + "\n")
    out_csv = tmp_path / "cmp.csv"
    assert aggregate.main(["--runs", *map(str, good), "--compare", *map(str, weak), "--n_boot", "500",
                           "--out", str(out_csv)]) == 0
    out = capsys.readouterr().out
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
    result = aggregate.compare([aggregate.load_run(p) for p in a], [aggregate.load_run(p) for p in b],
                               n_boot=50, seed=0)
    assert (result["n_common"], result["dropped_a"], result["dropped_b"]) == (N_TEST - 5, 5, 0)
    assert result["roc_auc_a"] == 1.0 and result["roc_auc_b"] == 0.5
    assert result["fold_deltas"] is None  # 2 folds against 1 cannot be paired


def test_pair_runs_by_fold_number(tmp_path):
    a = [aggregate.load_run(p) for p in experiment(tmp_path, "a", 1.0, k=3)]
    b = [aggregate.load_run(p) for p in experiment(tmp_path, "b", 1.0, k=3)]
    pairs = aggregate.pair_runs(a, list(reversed(b)))
    assert [(x.name, y.name) for x, y in pairs] == [("a_fold0", "b_fold0"), ("a_fold1", "b_fold1"),
                                                    ("a_fold2", "b_fold2")]


def test_no_common_video_and_bad_predictions(tmp_path):
    names, labels, classes = video_list()
    a = make_run(tmp_path, "a_fold0", labels + 0.1)
    b = make_run(tmp_path, "b_fold0", labels + 0.1, videos=([n + "_other" for n in names], labels, classes))
    with pytest.raises(MateError, match="no test video in common"):
        aggregate.compare([aggregate.load_run(a)], [aggregate.load_run(b)], n_boot=10, seed=0)
    c = make_run(tmp_path, "c_fold0", labels + 0.1, header="video,label,class,prob")
    with pytest.raises(MateError, match=r"predictions.csv: missing column\(s\) score"):
        aggregate.load_run(c)
    with pytest.raises(MateError, match="no runs given"):
        aggregate.main(["--runs"])


def test_refuses_to_overwrite(tmp_path):
    runs = experiment(tmp_path, "mate", 1.0, k=1)
    (tmp_path / "aggregate_mate.csv").write_text("old\n")
    with pytest.raises(MateError, match="already exists; pass --overwrite"):
        aggregate.main(["--runs", str(runs[0]), "--n_boot", "10"])
    assert aggregate.main(["--runs", str(runs[0]), "--n_boot", "10", "--overwrite"]) == 0
    assert read_rows(tmp_path / "aggregate_mate.csv")[0]["name"] == "mate_fold0"


def test_cli_missing_file_is_one_line_exit_2(tmp_path):
    runs = experiment(tmp_path, "mate", 1.0, k=2)
    (runs[1] / "predictions.csv").unlink()
    proc = run_script("aggregate.py", "--runs", *runs, "--n_boot", "10")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "mate_fold1/predictions.csv: missing; run test.py" in proc.stderr
    assert not (tmp_path / "aggregate_mate.csv").exists()
