"""What aggregate.py prints and writes: aligned text tables of runs and comparisons, and the CSV
rows (one per run, mean, std, pooled; then the comparison's ensembles, tests and per-fold deltas)."""
from __future__ import annotations

import csv
import io
import math

from scripts.evaluation.aggregation import ORACLE_COLUMNS, SUMMARY_COLUMNS, Run, oracle_value

# Level-named columns first; val_roc_auc, val_pr_auc, test_roc_auc, test_pr_auc (video level) and frame_pr_auc
# (= frame_ap_sklearn) repeat them under the names scripts read before results named their level.
CSV_FIELDS = ("experiment", "kind", "name", "best_epoch", "seeds", "folds", "val_video_roc_auc", "val_video_pr_auc",
              "test_video_roc_auc", "test_video_pr_auc", "frame_roc_auc", "frame_ap", "frame_ap_sklearn",
              "oracle_epoch", *ORACLE_COLUMNS, "roc_ci_low", "roc_ci_high", "pr_ci_low", "pr_ci_high",
              "delta_roc_auc", "delta_ci_low", "delta_ci_high", "z", "p_value", "n",
              "val_roc_auc", "val_pr_auc", "test_roc_auc", "test_pr_auc", "frame_pr_auc")


def _f(x: float | None, digits: int = 4) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _ci(low_high: tuple[float, float]) -> str:
    low, high = low_high
    return "-" if not math.isfinite(low) else f"{low:.4f}-{high:.4f}"


def plus_minus(mean_and_std: tuple[float, float]) -> str:
    mean, std = mean_and_std
    return "-" if not math.isfinite(mean) else f"{mean:.4f} ± {std:.4f}"


def _align(rows: list[list[str]]) -> str:
    """Columns padded to their widest cell: the first left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def format_experiment(runs: list[Run], summary: dict) -> str:
    """The table of one experiment's runs, its mean ± std row and the pooled test numbers; frame-level
    columns when any run has them (test.py --gt), with a line naming the benchmark's headline."""
    framed, oracle = summary.get("n_frame_runs", 0) > 0, summary.get("n_oracle_runs", 0) > 0
    head = ["run", "best epoch", "val video ROC-AUC", "val video PR-AUC", "test video ROC-AUC", "test video PR-AUC"]
    head += ["frame ROC-AUC", "frame AP"] if framed else []
    head += ["oracle epoch", "oracle video ROC-AUC"] + (["oracle frame ROC-AUC"] if framed else []) if oracle else []

    def oracle_cells(r: Run) -> list[str]:
        if not oracle:
            return []
        epoch = (r.oracle or {}).get("epoch")
        return ["-" if epoch is None else str(epoch), _f(oracle_value(r, "oracle_video_roc_auc"))] + \
            ([_f(oracle_value(r, "oracle_frame_roc_auc"))] if framed else [])

    rows = [head] + [[r.name, "-" if r.best_epoch is None else str(r.best_epoch), _f(r.val_roc_auc),
                      _f(r.val_pr_auc), _f(r.test_roc_auc), _f(r.test_pr_auc)]
                     + ([_f(r.frame_roc_auc), _f(r.frame_ap)] if framed else []) + oracle_cells(r) for r in runs]
    ms, ci = summary["mean_std"], summary["ci"]
    for label, cell in ((f"mean ± std (n={len(runs)})", lambda c: plus_minus(ms[c])), ("95% CI of the mean", lambda c: _ci(ci[c]))):
        rows.append([label, "", cell("val_roc_auc"), cell("val_pr_auc"), cell("test_roc_auc"), cell("test_pr_auc")]
                    + ([cell("frame_roc_auc"), cell("frame_ap")] if framed else [])
                    + (["", cell("oracle_video_roc_auc")] + ([cell("oracle_frame_roc_auc")] if framed else [])
                       if oracle else []))
    p = summary["pooled"]
    lines = [f"experiment {summary['name']}: {len(runs)} run(s), {summary.get('n_seeds', 1)} seed(s) x "
             f"{summary.get('n_folds', len(runs))} fold(s); checkpoints chosen on validation", _align(rows),
             f"pooled test ROC-AUC {_f(p['roc_auc'])} (95% CI {_f(p['roc_auc_ci'][0])}-{_f(p['roc_auc_ci'][1])}), "
             f"PR-AUC {_f(p['pr_auc'])} (95% CI {_f(p['pr_auc_ci'][0])}-{_f(p['pr_auc_ci'][1])}) "
             f"over {p['n']} predictions of {p['n_videos']} videos"]
    if p["n_repeated"]:
        lines.append(f"  note: {p['n_repeated']} predictions repeat a video scored by another run; the pooled "
                     f"CI treats them as independent, so it is narrower than {p['n_videos']} videos warrant")
    if framed:
        lines.append(format_frame_summary(summary, len(runs)))
    if oracle:
        lines.append("  oracle = the epoch best on the test set itself (main.py --oracle_test_list), as the peers "
                     "select; an upper bound, never the headline")
    return "\n".join(lines)


def format_frame_summary(summary: dict, n_runs: int) -> str:
    """`frame AP 0.8123 ± 0.0100, frame ROC-AUC ... (mean ± std over k of n runs ...)`, the benchmark's
    headline first: AP for XD-Violence, ROC-AUC for UCF-Crime."""
    ms, datasets = summary["mean_std"], summary["frame_datasets"]
    ap = f"frame AP {plus_minus(ms['frame_ap'])} (trapezoidal; average_precision_score {plus_minus(ms['frame_pr_auc'])})"
    auc = f"frame ROC-AUC {plus_minus(ms['frame_roc_auc'])}"
    xd = datasets == ["XD-Violence"]
    if len(datasets) == 1:
        note = f"{datasets[0]}: {'frame AP' if xd else 'frame ROC-AUC'} is its headline"
    else:
        note = "benchmarks mixed: " + ", ".join(datasets) if datasets else "benchmark unknown"
    return (f"{ap + ', ' + auc if xd else auc + ', ' + ap} (mean ± std over the {summary['n_frame_runs']} of "
            f"{n_runs} runs with frame metrics; {note})")


def format_comparison(c: dict, n_boot: int) -> str:
    """The paired comparison of `compare`: both ensembles, DeLong, bootstrap, per-fold deltas."""
    d, b = c["delong"], c["bootstrap"]
    lines = [f"comparison {c['name_a']} vs {c['name_b']} (fold-ensemble scores, Δ = {c['name_a']} - "
             f"{c['name_b']}) on {c['n_common']} common test videos; dropped {c['dropped_a']} only in "
             f"{c['name_a']}, {c['dropped_b']} only in {c['name_b']}",
             f"  ROC-AUC {_f(c['roc_auc_a'])} vs {_f(c['roc_auc_b'])}, PR-AUC {_f(c['pr_auc_a'])} vs "
             f"{_f(c['pr_auc_b'])}",
             f"  DeLong:           ΔROC-AUC {d['delta']:+.4f} (95% CI {d['ci_low']:+.4f} to {d['ci_high']:+.4f}), "
             f"z {d['z']:.3f}, p {d['p_value']:.3g}",
             f"  paired bootstrap: ΔROC-AUC {b['delta']:+.4f} (95% CI {b['ci_low']:+.4f} to "
             f"{b['ci_high']:+.4f}), p {b['p_value']:.3g} ({n_boot} replicates)"]
    if c["fold_deltas"] is None:
        lines.append("  per-fold ΔROC-AUC: skipped, the two experiments' runs cannot be paired")
    else:
        mean, std = c["fold_delta_mean_std"]
        w = c["wilcoxon"]
        lines.append(f"  per-run ΔROC-AUC over matched (seed, fold) pairs (test_metrics.json): {mean:+.4f} ± "
                     f"{std:.4f} (n={len(c['fold_deltas'])}); exact Wilcoxon signed-rank p {_f(w['p_value'], 3)} "
                     f"({w['n']} non-zero pairs)")
        lines += [f"    {a} - {b_}: {delta:+.4f}" for a, b_, delta in c["fold_deltas"]]
    return "\n".join(lines)


def _cell(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if not math.isfinite(x) else repr(x)
    return str(x)


def _named(values: dict) -> dict:
    """Run attributes -> both their level-named and their older column names."""
    out = dict(values)
    out.update({SUMMARY_COLUMNS[k]: v for k, v in values.items() if k in SUMMARY_COLUMNS})
    return out


def csv_rows(runs: list[Run], summary: dict) -> list[dict]:
    """One row per run, then the mean, std, ci_low, ci_high (t-interval of the mean over seeds x folds)
    and pooled rows of one experiment."""
    exp = summary["name"]
    rows = [{"experiment": exp, "kind": "run", "name": r.name, "best_epoch": r.best_epoch, "n": len(r.predictions.videos),
             **_named({c: getattr(r, c) for c in SUMMARY_COLUMNS}),
             "oracle_epoch": (r.oracle or {}).get("epoch"), **{c: oracle_value(r, c) for c in ORACLE_COLUMNS}}
            for r in runs]
    counts = {"seeds": summary.get("n_seeds"), "folds": summary.get("n_folds"), "n": len(runs)}
    for i, kind in enumerate(("mean", "std")):
        rows.append({"experiment": exp, "kind": kind, "name": exp, **counts,
                     **_named({c: v[i] for c, v in summary["mean_std"].items()})})
    for i, kind in enumerate(("ci_low", "ci_high")):
        rows.append({"experiment": exp, "kind": kind, "name": exp, **counts,
                     **_named({c: v[i] for c, v in summary["ci"].items()})})
    p = summary["pooled"]
    rows.append({"experiment": exp, "kind": "pooled", "name": exp, "test_roc_auc": p["roc_auc"],
                 "test_video_roc_auc": p["roc_auc"], "test_video_pr_auc": p["pr_auc"],
                 "test_pr_auc": p["pr_auc"], "roc_ci_low": p["roc_auc_ci"][0], "roc_ci_high": p["roc_auc_ci"][1],
                 "pr_ci_low": p["pr_auc_ci"][0], "pr_ci_high": p["pr_auc_ci"][1], "n": p["n"]})
    return rows


def comparison_rows(c: dict) -> list[dict]:
    """Rows of the comparison: both ensembles, DeLong, paired bootstrap, per-fold differences."""
    pair = f"{c['name_a']} vs {c['name_b']}"
    n = c["n_common"]
    d, b = c["delong"], c["bootstrap"]
    rows = [{"experiment": pair, "kind": "ensemble", "name": c[f"name_{s}"], "test_roc_auc": c[f"roc_auc_{s}"],
             "test_pr_auc": c[f"pr_auc_{s}"], "test_video_roc_auc": c[f"roc_auc_{s}"],
             "test_video_pr_auc": c[f"pr_auc_{s}"], "n": n} for s in ("a", "b")]
    rows.append({"experiment": pair, "kind": "delong", "name": pair, "delta_roc_auc": d["delta"],
                 "delta_ci_low": d["ci_low"], "delta_ci_high": d["ci_high"], "z": d["z"],
                 "p_value": d["p_value"], "n": n})
    rows.append({"experiment": pair, "kind": "paired_bootstrap", "name": pair, "delta_roc_auc": b["delta"],
                 "delta_ci_low": b["ci_low"], "delta_ci_high": b["ci_high"], "p_value": b["p_value"], "n": n})
    if c["fold_deltas"] is not None:
        rows += [{"experiment": pair, "kind": "fold_delta", "name": f"{a} - {b_}", "delta_roc_auc": delta}
                 for a, b_, delta in c["fold_deltas"]]
        for i, kind in enumerate(("fold_delta_mean", "fold_delta_std")):
            rows.append({"experiment": pair, "kind": kind, "name": pair,
                         "delta_roc_auc": c["fold_delta_mean_std"][i], "n": len(c["fold_deltas"])})
        rows.append({"experiment": pair, "kind": "wilcoxon_signed_rank", "name": pair,
                     "delta_roc_auc": c["fold_delta_mean_std"][0], "p_value": c["wilcoxon"]["p_value"],
                     "n": c["wilcoxon"]["n"]})
    return rows


def to_csv(rows: list[dict], fields: tuple[str, ...] = CSV_FIELDS) -> str:
    """Rows as CSV text with the `fields` header; missing and non-finite cells are empty."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in fields})
    return buf.getvalue()

