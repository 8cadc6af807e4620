"""Summarise runs: mean ± std over folds, a pooled bootstrap CI, and a paired comparison of two
experiments on the same test videos.

    # mean ± std over the folds (x seeds) of one experiment, pooled test ROC-AUC with a bootstrap 95% CI
    python aggregate.py --runs runs/mate_fast_s*_fold*          # run_folds.sh's names; runs/x_fold* too
    # ... and MATE against an ablation on the same test videos: DeLong test, paired bootstrap, and the
    # exact Wilcoxon signed-rank test over the runs matched by (seed, fold)
    python aggregate.py --runs runs/mate_fast_s*_fold* --compare runs/nomotion_s*_fold* --n_boot 2000
    # the ablation table of runs named <prefix>_<row>_s<seed>_fold<k> (make ablations): CSV, Markdown, PNG
    python aggregate.py --table runs/abl_*
    # the benchmark table (make benchmark): experiments x (headline, video ROC-AUC) x (val-selected, oracle),
    # mean ± std [95% CI] over seeds x folds, Wilcoxon p against the baseline
    python aggregate.py --benchmark runs/bench_*_s*_fold* --baseline bench_mil
    # two per-frame predictions on one frame GT (test.py's snippet_scores*.npz / frame_scores*.npy, a peer's
    # pred.npy): DeLong on frame ROC-AUC and a bootstrap that resamples videos
    python aggregate.py --frame_compare runs/a/snippet_scores_fold0.npz peer_pred.npy --gt list/gt-ucf.npy

Each run folder needs test.py's `test_metrics.json` and `predictions.csv`; the best validation epoch
and its numbers come from `test_metrics.json` (or, if it lacks them, from the best `val_roc_auc` row
of `metrics.csv`). The table is printed and written as a CSV (default:
`<runs' folder>/aggregate_<experiment>.csv`, `..._vs_<other>.csv` with --compare).

The pooled CI resamples all runs' predictions concatenated as if independent: with one shared test
list the same video appears once per fold, so that CI is too narrow (by about sqrt(K) for K folds)
as a statement about new test videos; the comparison below has no such problem.
The comparison first averages each video's score over the runs of an experiment (the fold
ensemble), then tests the two ensembles on the videos both have.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.evaluation.aggregation import compare, default_out, experiment_summary, load_runs
from scripts.evaluation.aggregation_report import comparison_rows, csv_rows, format_comparison, format_experiment, to_csv
from scripts.core.cli import OneLineParser, run, seed_int
from scripts.core.errors import MateError
from scripts.option import get_bootstrap_parser
from scripts.core.fileio import write_text


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser("aggregate.py", description=__doc__, add_help=add_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           parents=[get_bootstrap_parser()])
    parser.add_argument("--runs", type=Path, nargs="*", default=[], metavar="RUN_DIR",
                        help="run folders of one experiment, e.g. runs/mate_fast_s*_fold*; required unless "
                             "--table or --benchmark is given (default: none)")
    parser.add_argument("--compare", type=Path, nargs="*", default=None, metavar="RUN_DIR",
                        help="run folders of a second experiment scored on the same test videos; adds "
                             "the DeLong test and the paired bootstrap of ΔROC-AUC = runs - compare, and the "
                             "exact Wilcoxon signed-rank test over runs matched by (seed, fold) (default: no "
                             "comparison)")
    parser.add_argument("--table", type=Path, nargs="*", default=None, metavar="RUN_DIR",
                        help="run folders named <prefix>_<row>_s<seed>_fold<k> or <prefix>_<row>_fold<k> (rows: "
                             "full, mil and those of configs/ablations/): print and write the ablation table "
                             "instead (default: off)")
    parser.add_argument("--benchmark", type=Path, nargs="*", default=None, metavar="RUN_DIR",
                        help="run folders <experiment>_s<seed>_fold<k> of several experiments on one feature set: "
                             "print and write the benchmark table (docs/benchmarks.md) instead (default: off)")
    parser.add_argument("--frame_compare", type=Path, nargs=2, default=None, metavar=("PRED_A", "PRED_B"),
                        help="compare two per-frame predictions on --gt: each a .npy of frame scores (a peer's "
                             "pred.npy, test.py's frame_scores*.npy) or test.py's snippet_scores*.npz (expanded over "
                             "16 frames per snippet); DeLong on frame ROC-AUC and a paired bootstrap that resamples "
                             "videos, whose frame counts come from an .npz among them or --videos (default: off)")
    parser.add_argument("--gt", type=Path, default=None,
                        help="--frame_compare: the frame GT array, 0/1 per frame concatenated (the peers' gt-*.npy) "
                             "(default: none)")
    parser.add_argument("--videos", type=Path, default=None,
                        help="--frame_compare: a snippet_scores*.npz giving the videos' lengths when both "
                             "predictions are .npy (default: from the predictions)")
    parser.add_argument("--baseline", type=str, default=None,
                        help="the experiment of --benchmark the others are tested against (default: none)")
    parser.add_argument("--out", type=Path, default=None,
                        help="CSV to write (default: aggregate_<experiment>[_vs_<other>].csv beside "
                             "the first run folder, i.e. in runs/)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the bootstrap resampling (default: 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the output CSV if it exists (default: refuse)")
    return parser


def write_table(args) -> int:
    """--table: the ablation table as CSV, Markdown and a bar chart; exit 1 if a row or run is missing."""
    from scripts.evaluation.ablation_table import build_table, markdown, plot, table_records

    if not args.table:
        raise MateError("--table needs run folders: --table runs/<prefix>_*")
    out = output_csv(args, Path(args.table[0]).parent / f"ablation_table_{common_prefix(args.table)}.csv")
    rows, problems = build_table([Path(p) for p in args.table], n_boot=args.n_boot, seed=args.seed)
    if not any(row.runs for row in rows):
        raise MateError(f"no tested run of any row among the {len(args.table)} folder(s) given, e.g. "
                        f"{problems[0] if problems else args.table[0]}")
    records = table_records(rows)
    text = markdown(records)
    print(text, end="")
    paths = [write_text(out, to_csv(records, tuple(records[0]))), write_text(out.with_suffix(".md"), text),
             plot(rows, out.with_suffix(".png"))]
    print("wrote " + ", ".join(map(str, paths)))
    for line in problems:
        print(f"missing: {line}")
    return 1 if problems else 0


def write_benchmark(args) -> int:
    """--benchmark: the benchmark table as CSV and Markdown."""
    from scripts.evaluation.benchmark_table import group, markdown, table_records

    if not args.benchmark:
        raise MateError("--benchmark needs run folders: --benchmark runs/<prefix>_*_s*_fold*")
    out = output_csv(args, Path(args.benchmark[0]).parent / f"benchmark_{common_prefix(args.benchmark)}.csv")
    records = table_records(group([Path(p) for p in args.benchmark]), args.baseline)
    text = markdown(records)
    print(text, end="")
    print("val-selected: the checkpoint of the best validation epoch (the headline); oracle: the epoch best on the "
          "test set itself (main.py --oracle_test_list), as the peers select: an upper bound, not a result. "
          "mean ± std [95% t-interval of the mean] over seeds x folds")
    paths = [write_text(out, to_csv(records, tuple(records[0]))), write_text(out.with_suffix(".md"), text)]
    print("wrote " + ", ".join(map(str, paths)))
    return 0


def output_csv(args, default: Path) -> Path:
    """--out, else `default`; an existing file only with --overwrite."""
    out = args.out or default
    if out.exists() and not args.overwrite:
        raise MateError(f"{out}: already exists; pass --overwrite to replace it (or --out elsewhere)")
    return out


def common_prefix(folders) -> str:
    names = [Path(f).name for f in folders]
    prefix = names[0].split("_")[0] if names else "runs"
    return prefix if all(n.startswith(prefix + "_") for n in names) else "runs"


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.n_boot < 1:
        raise MateError(f"--n_boot must be at least 1, got {args.n_boot}")
    if args.table is not None:
        return write_table(args)
    if args.frame_compare is not None:
        from scripts.evaluation.snippet_outputs import format_frame_compare, frame_compare

        if args.gt is None:
            raise MateError("--frame_compare needs --gt: the frame GT array both predictions are scored on")
        a, b = args.frame_compare
        print(format_frame_compare(frame_compare(a, b, args.gt, videos=args.videos, n_boot=args.n_boot,
                                                 seed=args.seed), a, b))
        return 0
    if args.benchmark is not None:
        return write_benchmark(args)
    if not args.runs:
        raise MateError("no runs given: pass --runs runs/<exp_name>_fold*")
    if args.compare is not None and not args.compare:
        raise MateError("--compare needs run folders: --compare runs/<other_exp>_fold*")
    out = output_csv(args, default_out(args.runs, args.compare))

    runs = load_runs(args.runs, "--runs")
    summary = experiment_summary(runs, args.n_boot, args.seed)
    print(format_experiment(runs, summary))
    rows = csv_rows(runs, summary)
    if args.compare:
        others = load_runs(args.compare, "--compare")
        other_summary = experiment_summary(others, args.n_boot, args.seed)
        print()
        print(format_experiment(others, other_summary))
        comparison = compare(runs, others, args.n_boot, args.seed)
        print()
        print(format_comparison(comparison, args.n_boot))
        rows += csv_rows(others, other_summary) + comparison_rows(comparison)
    write_text(out, to_csv(rows))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run(main)
