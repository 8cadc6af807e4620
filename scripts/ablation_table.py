"""The ablation table of the original README, from run folders named `<prefix>_<row>_fold<k>`.

One row per component removed (the rows of configs/ablations/, plus the full model and the MIL
baseline; three rows put back a published choice where MATE departs from it): parameters, test ROC-AUC and PR-AUC mean ± std over folds, and ΔROC-AUC against the full
model with DeLong's p-value on the fold ensembles' test predictions (scripts/aggregation.compare). A
row without runs, or a run without test.py's outputs, is reported, never silently dropped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from scripts.aggregation import Run, compare, experiment_name, load_run, mean_std
from scripts.errors import MateError

FULL = "full"
# (row key, "Component Removed" as the original README words it), in its order
ROWS: tuple[tuple[str, str], ...] = (
    (FULL, "none (full model)"),
    ("no_motion_map", "Motion Map"),
    ("no_attention", "Attention Block"),
    ("tcc_multiscale", "TCC (w/ Multiscale)"),
    ("tcc_gating", "TCC (w/ Motion Gating)"),
    ("tcc_plain", "TCC (no extras)"),
    ("tcc_multiscale_gating", "TCC (Multiscale + Motion Gating)"),
    ("no_tcc", "TCC (removed)"),
    ("no_triplet", "Triplet Loss"),
    ("no_motion_pooling", "Motion-Aware Temporal Pooling Block"),
    ("no_motion", "Motion Map and difference features"),
    ("mil", "everything: the MIL baseline"),
    # the published design's choices where MATE departs from it (docs/model.md), each against the default
    ("input_norm_token", "video-level input norm -> published per-token LayerNorm"),
    ("video_logit_embedding", "top-k video logit -> published head on z"),
    ("mil_dropout", "MIL baseline with Sultani et al.'s dropout 0.6"),
)
LABELS = dict(ROWS)


@dataclass
class Row:
    key: str
    runs: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    parameters: int | None = None
    vs_full: dict | None = None


def row_key(experiment: str) -> str | None:
    """The row an experiment name belongs to: the longest row key it ends with (`abl_tcc_gating`)."""
    found = [k for k, _ in ROWS if experiment == k or experiment.endswith("_" + k)]
    return max(found, key=len) if found else None


def count_parameters(run_dir: Path) -> int | None:
    from scripts.checkpoint import load_checkpoint

    path = run_dir / "checkpoint_best.pth"
    if not path.is_file():
        return None
    return sum(t.numel() for t in load_checkpoint(path)["model"].values())


def collect(folders: list[Path]) -> tuple[dict[str, Row], list[str]]:
    """Group run folders by row; a folder that is no row, or not yet tested, becomes a problem line."""
    rows = {key: Row(key) for key, _ in ROWS}
    ignored = []
    for folder in sorted(dict.fromkeys(folders)):
        key = row_key(experiment_name(folder.name))
        if key is None:
            ignored.append(f"{folder}: not a row of the table (names end with one of {', '.join(LABELS)})")
            continue
        try:
            rows[key].runs.append(load_run(folder))
        except MateError as exc:
            rows[key].problems.append(str(exc))
    return rows, ignored


def build_table(folders: list[Path], *, n_boot: int, seed: int) -> tuple[list[Row], list[str]]:
    """The rows in the README's order with their numbers, and every problem found on the way."""
    rows, problems = collect(folders)
    full = rows[FULL]
    for row in rows.values():
        if row.runs:
            row.parameters = count_parameters(row.runs[0].path)
            if full.runs and row.key != FULL:
                row.vs_full = compare(row.runs, full.runs, n_boot, seed)
        problems += row.problems
        if not row.runs:
            problems.append(f"row '{row.key}' ({LABELS[row.key]}): no tested runs")
    return list(rows.values()), problems


def _pm(values: list[float]) -> str:
    m, s = mean_std(values)
    return "n/a" if math.isnan(m) else f"{m:.4f} ± {s:.4f}"


def table_records(rows: list[Row]) -> list[dict]:
    """One dict per row: the columns of the CSV and the Markdown table."""
    records = []
    for row in rows:
        c = row.vs_full
        records.append({
            "row": row.key, "component_removed": LABELS[row.key], "folds": len(row.runs),
            "parameters": "" if row.parameters is None else row.parameters,
            "test_roc_auc": _pm([r.test_roc_auc for r in row.runs]),
            "test_pr_auc": _pm([r.test_pr_auc for r in row.runs]),
            "delta_roc_auc": "" if c is None else f"{c['roc_auc_a'] - c['roc_auc_b']:+.4f}",
            "delong_p": "" if c is None else f"{c['delong']['p_value']:.3g}",
        })
    return records


def markdown(records: list[dict]) -> str:
    head = ["Component Removed", "# Params", "Folds", "Test ROC-AUC", "Test PR-AUC",
            "ΔROC-AUC vs full (ensemble)", "DeLong p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        params = f"{r['parameters']:,}" if r["parameters"] != "" else "n/a"
        lines.append(f"| {r['component_removed']} | {params} | {r['folds']} | {r['test_roc_auc']} | "
                     f"{r['test_pr_auc']} | {r['delta_roc_auc'] or '—'} | {r['delong_p'] or '—'} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> Path:
    """Bars of test ROC-AUC (mean ± std over folds) per row, the full model's mean as a line."""
    from scripts.plots import new_figure, save_figure

    shown = [r for r in rows if r.runs]
    means = [mean_std([x.test_roc_auc for x in r.runs]) for r in shown]
    fig = new_figure(9, 4.2)
    ax = fig.add_subplot()
    ax.bar(range(len(shown)), [m for m, _ in means], yerr=[s for _, s in means], capsize=3,
           color=["C2" if r.key == FULL else "C0" for r in shown])
    if shown and shown[0].key == FULL:
        ax.axhline(means[0][0], color="C2", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(shown)), [LABELS[r.key] for r in shown], rotation=35, ha="right", fontsize=8)
    low = min((m - s for m, s in means), default=0.5)
    ax.set(ylabel="test ROC-AUC (mean ± std over folds)", ylim=(max(0.0, low - 0.05), 1.0),
           title="Ablation: component removed")
    return save_figure(fig, path)
