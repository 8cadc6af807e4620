"""aggregate.py --benchmark (make benchmark): one table of experiments over seeds x folds, the headline at frame
level when the runs have it, val-selected and oracle side by side, and the Wilcoxon p against the baseline
equal to the test on the matched (seed, fold) differences."""
import csv
import json

import numpy as np

from scripts.evaluation.metrics import wilcoxon_signed_rank
from tests.conftest import run_script
from tests.test_aggregate import make_run, video_list

FRAME = {"bench_fast": 0.80, "bench_base": 0.78, "bench_mil": 0.70}  # frame ROC-AUC around these


def bench_runs(root):
    _, labels, _ = video_list()
    rng = np.random.default_rng(0)
    values, folders = {}, []
    for exp, level in FRAME.items():
        for seed in (0, 1):
            for fold in range(3):
                name = f"{exp}_s{seed}_fold{fold}"
                folder = make_run(root, name, rng.normal(size=labels.size) + 1.0 * labels)
                frame = level + 0.01 * (fold - seed) + 0.002 * rng.random()
                metrics = json.loads((folder / "test_metrics.json").read_text())
                metrics["frame"] = {"dataset": "UCF-Crime", "roc_auc": frame, "pr_auc": 0.3, "frame_ap": 0.28}
                metrics["oracle"] = {"epoch": 9, "video_roc_auc": metrics["roc_auc"] + 0.02,
                                     "frame_roc_auc": frame + 0.03}
                (folder / "test_metrics.json").write_text(json.dumps(metrics))
                values[name] = frame
                folders.append(folder)
    return folders, values


def test_benchmark_table(tmp_path):
    folders, values = bench_runs(tmp_path)
    done = run_script("aggregate.py", "--benchmark", *folders, "--baseline", "bench_mil", "--n_boot", "20")
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "benchmark_bench.csv", newline="") as f:
        rows = {r["experiment"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["bench_fast", "bench_base", "bench_mil"]
    fast = rows["bench_fast"]
    assert fast["headline"] == "frame ROC-AUC" and fast["runs"] == "6"
    mine = [values[f"bench_fast_s{s}_fold{k}"] for s in (0, 1) for k in range(3)]
    assert fast["frame ROC-AUC (val-selected)"].startswith(f"{np.mean(mine):.4f} ± {np.std(mine, ddof=1):.4f} [")
    assert fast["frame ROC-AUC (oracle)"].startswith(f"{np.mean(mine) + 0.03:.4f} ± ")
    deltas = [values[f"bench_fast_s{s}_fold{k}"] - values[f"bench_mil_s{s}_fold{k}"] for s in (0, 1) for k in range(3)]
    p = wilcoxon_signed_rank(deltas)["p_value"]
    assert fast["p vs bench_mil (Wilcoxon, frame ROC-AUC)"] == f"{p:.3g}" and fast["pairs"] == "6"
    assert rows["bench_mil"]["p vs bench_mil (Wilcoxon, frame ROC-AUC)"] == ""
    assert "oracle: the epoch best on the test set itself" in done.stdout
    assert (tmp_path / "benchmark_bench.md").read_text().startswith("| experiment | runs | headline |")


def test_a_missing_baseline_is_named(tmp_path):
    folders, _ = bench_runs(tmp_path)
    done = run_script("aggregate.py", "--benchmark", *folders, "--baseline", "bench_xyz", "--n_boot", "20")
    assert done.returncode == 2
    assert "--baseline bench_xyz: no such experiment among bench_fast, bench_base, bench_mil" in done.stderr


def test_map_runs_lead_with_video_roc_auc(tmp_path):
    _, labels, _ = video_list()
    folders = [make_run(tmp_path, f"m_{e}_s0_fold{k}", labels + 0.1 * k) for e in ("a", "b") for k in range(2)]
    done = run_script("aggregate.py", "--benchmark", *folders, "--n_boot", "20", "--out", tmp_path / "t.csv")
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "t.csv", newline="") as f:
        first = next(csv.DictReader(f))
    assert first["headline"] == "video ROC-AUC" and first["video ROC-AUC (at the oracle epoch)"] == "-"
