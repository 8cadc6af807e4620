"""The benchmark table (aggregate.py --benchmark, `make benchmark`; docs/benchmarks.md): MATE fast, base and the
MIL baseline over folds x seeds on one feature set, in one table with every figure's level and selection named.

Rows are experiments (run folders `<experiment>_s<seed>_fold<k>`). Columns: the headline figure (the
benchmark's frame-level one when the runs were tested with --gt: frame ROC-AUC, or frame AP for XD-Violence;
else video ROC-AUC), validation-selected (the checkpoint main.py keeps) and test-oracle (main.py
--oracle_test_list: the epoch best on the test set by that figure, as the peers select), then video ROC-AUC
at both epochs; each
mean ± std over the runs with a t-interval of the mean; and the paired test against the baseline: the exact
Wilcoxon signed-rank test over the (seed, fold) pairs of the validation-selected headline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from scripts.core.errors import MateError
from scripts.evaluation.aggregation import (Run, experiment_name, load_runs, mean_ci, mean_std, oracle_value,
                                            pair_runs)
from scripts.evaluation.aggregation_report import plus_minus
from scripts.evaluation.metrics import wilcoxon_signed_rank

FRAME_HEADLINE = {"XD-Violence": ("frame_ap", "frame AP")}  # others: frame ROC-AUC


@dataclass
class BenchRow:
    name: str
    runs: list[Run]


def headline_of(runs: list[Run]) -> tuple[str, str, str]:
    """(Run attribute, oracle column, label) of the figure the table leads with."""
    datasets = {r.frame_dataset for r in runs if r.frame_dataset}
    if not datasets:
        return "test_roc_auc", "oracle_video_roc_auc", "video ROC-AUC"
    if len(datasets) > 1:
        raise MateError(f"runs tested on different benchmarks ({', '.join(sorted(datasets))}): one table per benchmark")
    key, label = FRAME_HEADLINE.get(datasets.pop(), ("frame_roc_auc", "frame ROC-AUC"))
    return key, f"oracle_{key}", label


def group(folders: list[Path]) -> list[BenchRow]:
    """The runs by experiment, in the order the experiments first appear."""
    rows: dict[str, list[Run]] = {}
    for run in load_runs(folders, "--benchmark"):
        rows.setdefault(experiment_name(run.name), []).append(run)
    return [BenchRow(name, runs) for name, runs in rows.items()]


def _cell(values: list[float]) -> str:
    """`mean ± std [low, high]` (the t-interval of the mean, when there are two values or more)."""
    low, high = mean_ci(values)
    return plus_minus(mean_std(values)) + (f" [{low:.4f}, {high:.4f}]" if math.isfinite(low) else "")


def table_records(rows: list[BenchRow], baseline: str | None) -> list[dict]:
    """One record per experiment: the cells of the table (strings) and the numbers behind them."""
    every = [r for row in rows for r in row.runs]
    key, oracle_key, label = headline_of(every)
    base = next((row for row in rows if row.name == baseline), None)
    if baseline is not None and base is None:
        raise MateError(f"--baseline {baseline}: no such experiment among {', '.join(row.name for row in rows)}")
    records = []
    for row in rows:
        head = [getattr(r, key) for r in row.runs]
        pvalue, pairs = "", ""
        if base is not None and row is not base:
            paired = pair_runs(row.runs, base.runs) or []
            deltas = [getattr(a, key) - getattr(b, key) for a, b in paired]
            deltas = [d for d in deltas if math.isfinite(d)]
            if deltas:
                w = wilcoxon_signed_rank(deltas)
                pvalue, pairs = ("-" if math.isnan(w["p_value"]) else f"{w['p_value']:.3g}"), str(len(deltas))
        records.append({
            "experiment": row.name, "runs": str(len(row.runs)), "headline": label,
            f"{label} (val-selected)": _cell(head),
            f"{label} (oracle)": _cell([oracle_value(r, oracle_key) for r in row.runs]),
            "video ROC-AUC (val-selected)": _cell([r.test_roc_auc for r in row.runs]),
            "video ROC-AUC (at the oracle epoch)": _cell([oracle_value(r, "oracle_video_roc_auc") for r in row.runs]),
            f"p vs {baseline} (Wilcoxon, {label})" if baseline else "p": pvalue, "pairs": pairs})
    return records


def markdown(records: list[dict]) -> str:
    columns = list(records[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r[c] for c in columns) + " |" for r in records]
    return "\n".join(lines) + "\n"
