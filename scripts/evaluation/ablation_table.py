"""The ablation table of the original README, from run folders named `<prefix>_<row>_s<seed>_fold<k>`
(run_folds.sh; the older `<prefix>_<row>_fold<k>` too).

One row per change (scripts/evaluation/ablation_rows.py: the full model, each config of configs/ablations/ by
the "_row" it declares, and the MIL baseline), the column Change saying whether it removes a part, adds
one or sets a value (a published choice put back, or a departure kept as an option): parameters, the
seeds and folds it ran, test ROC-AUC and PR-AUC mean ± std over its runs (seeds x folds), ΔROC-AUC
against the full model as the mean over matched (seed, fold) pairs with the exact Wilcoxon signed-rank
p-value, and ΔROC-AUC of the ensembles (each test video's score averaged over the runs) with DeLong's
p-value (scripts/aggregation.compare; the full model's runs limited to the row's seeds). A row without runs, or a run without test.py's outputs, is
reported, never silently dropped.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

from scripts.evaluation.ablation_rows import CONFIGS, FULL, AblationRow, table_rows
from scripts.evaluation.aggregation import Run, compare, experiment_name, load_run, mean_std, seed_and_fold
from scripts.core.errors import MateError

# Rows of older tables, shown when their runs are given and never reported missing: the full model's
# TCC was plain until the default went back to the published multiscale_gating, and fast had 8 attention
# heads (one channel each) until 4 made its attention's motion conditioning live (docs/model.md).
OLD_ROWS = (AblationRow("tcc_multiscale_gating", "set", "TCC (Multiscale + Motion Gating)", CONFIGS),
            AblationRow("num_heads_1", "set", "published 8 attention heads -> 1", CONFIGS))
OLD_KEYS = {r.key for r in OLD_ROWS}


@functools.lru_cache(maxsize=1)
def known_rows() -> dict[str, AblationRow]:
    """Every row by key, today's in the table's order (read from the configs once, when first asked), then
    the old ones."""
    return {r.key: r for r in table_rows() + OLD_ROWS}


@dataclass
class Row:
    key: str
    runs: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    parameters: int | None = None
    vs_full: dict | None = None


def row_key(experiment: str) -> str | None:
    """The row an experiment name belongs to: the longest row key it ends with (`abl_tcc_gating`)."""
    found = [k for k in known_rows() if experiment == k or experiment.endswith("_" + k)]
    return max(found, key=len) if found else None


def count_parameters(run_dir: Path) -> int | None:
    from scripts.models.checkpoint import load_checkpoint

    path = run_dir / "checkpoint_best.pth"
    if not path.is_file():
        return None
    return sum(t.numel() for t in load_checkpoint(path)["model"].values())


def collect(folders: list[Path]) -> tuple[dict[str, Row], list[str]]:
    """Group run folders by row; a folder that is no row, or not yet tested, becomes a problem line."""
    rows = {key: Row(key) for key in known_rows()}
    ignored = []
    for folder in sorted(dict.fromkeys(folders)):
        key = row_key(experiment_name(folder.name))
        if key is None:
            ignored.append(f"{folder}: not a row of the table (names end with one of {', '.join(known_rows())})")
            continue
        try:
            rows[key].runs.append(load_run(folder))
        except MateError as exc:
            rows[key].problems.append(str(exc))
    return rows, ignored


def same_seeds(runs: list[Run], like: list[Run]) -> list[Run]:
    """The runs of `runs` with a seed that `like` has (all of them if none has): a row over seed 0
    alone meets the full model's seed-0 ensemble, not the larger and so stronger ensemble of 3 seeds."""
    seeds = {_seed_fold(r)[0] for r in like}
    kept = [r for r in runs if _seed_fold(r)[0] in seeds]
    return kept or runs


def build_table(folders: list[Path], *, n_boot: int, seed: int) -> tuple[list[Row], list[str]]:
    """The rows in the README's order with their numbers, and every problem found on the way."""
    rows, problems = collect(folders)
    full = rows[FULL]
    for row in rows.values():
        if row.runs:
            row.parameters = count_parameters(row.runs[0].path)
            if full.runs and row.key != FULL:
                row.vs_full = compare(row.runs, same_seeds(full.runs, row.runs), n_boot, seed)
        problems += row.problems
        if not row.runs and row.key not in OLD_KEYS:
            problems.append(f"row '{row.key}' ({known_rows()[row.key].part}): no tested runs")
    return [r for r in rows.values() if r.runs or r.key not in OLD_KEYS], problems


def _pm(values: list[float]) -> str:
    m, s = mean_std(values)
    return "n/a" if math.isnan(m) else f"{m:.4f} ± {s:.4f}"


def _seed_fold(run: Run) -> tuple[int | None, int | None]:
    """(seed, fold) from the run's name; None for what the name does not give."""
    return seed_and_fold(run.name) or (None, None)


def seeds_and_folds(runs: list[Run]) -> tuple[int, int]:
    """How many seeds and folds a row's runs cover (a run named without a seed counts as one seed)."""
    keys = [_seed_fold(r) for r in runs]
    return len({seed for seed, _ in keys}), len({fold for _, fold in keys})


def table_records(rows: list[Row]) -> list[dict]:
    """One dict per row: the columns of the CSV and the Markdown table."""
    records = []
    for row in rows:
        c = row.vs_full
        seeds, folds = seeds_and_folds(row.runs)
        paired = c is not None and c["fold_deltas"] is not None
        records.append({
            "row": row.key, "change": known_rows()[row.key].change, "part": known_rows()[row.key].part,
            "seeds": seeds, "folds": folds,
            "runs": len(row.runs), "parameters": "" if row.parameters is None else row.parameters,
            "test_roc_auc": _pm([r.test_roc_auc for r in row.runs]),
            "test_pr_auc": _pm([r.test_pr_auc for r in row.runs]),
            "paired_delta_roc_auc": f"{c['fold_delta_mean_std'][0]:+.4f}" if paired else "",
            "pairs": len(c["fold_deltas"]) if paired else "",
            "wilcoxon_p": f"{c['wilcoxon']['p_value']:.3g}" if paired else "",
            "delta_roc_auc": "" if c is None else f"{c['roc_auc_a'] - c['roc_auc_b']:+.4f}",
            "delong_p": "" if c is None else f"{c['delong']['p_value']:.3g}",
        })
    return records


def markdown(records: list[dict]) -> str:
    head = ["Change", "Part", "# Params", "Seeds × Folds", "Test video ROC-AUC", "Test video PR-AUC",
            "ΔROC-AUC vs full (paired runs)", "Wilcoxon p", "ΔROC-AUC vs full (ensemble)", "DeLong p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        params = f"{r['parameters']:,}" if r["parameters"] != "" else "n/a"
        paired = f"{r['paired_delta_roc_auc']} (n={r['pairs']})" if r["paired_delta_roc_auc"] else "—"
        lines.append(f"| {r['change']} | {r['part']} | {params} | {r['seeds']} × {r['folds']} | {r['test_roc_auc']} | "
                     f"{r['test_pr_auc']} | {paired} | {r['wilcoxon_p'] or '—'} | {r['delta_roc_auc'] or '—'} | "
                     f"{r['delong_p'] or '—'} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> Path:
    """Bars of test ROC-AUC (mean ± std over folds) per row, the full model's mean as a line."""
    from scripts.core.plots import new_figure, save_figure

    shown = [r for r in rows if r.runs]
    means = [mean_std([x.test_roc_auc for x in r.runs]) for r in shown]
    fig = new_figure(9, 4.2)
    ax = fig.add_subplot()
    ax.bar(range(len(shown)), [m for m, _ in means], yerr=[s for _, s in means], capsize=3,
           color=["C2" if r.key == FULL else "C0" for r in shown])
    if shown and shown[0].key == FULL:
        ax.axhline(means[0][0], color="C2", linestyle="--", linewidth=1)
    known = known_rows()
    names = [known[r.key].part if r.key == FULL else f"{known[r.key].change}: {known[r.key].part}" for r in shown]
    ax.set_xticks(range(len(shown)), names, rotation=35, ha="right", fontsize=8)
    low = min((m - s for m, s in means), default=0.5)
    ax.set(ylabel="test video ROC-AUC (mean ± std over runs)", ylim=(max(0.0, low - 0.05), 1.0),
           title="Ablation: a part removed, added or set")
    return save_figure(fig, path)
