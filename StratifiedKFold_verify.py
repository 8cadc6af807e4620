r"""Check K fold manifests for balance and leakage; exit 1 if any check fails.

Reads fold{i}_train.txt / fold{i}_val.txt (and fold{i}_test.txt if present) for i = 0..K-1, prints
the per-fold counts (Fold 1 = the fold0_* files), then either `OK: ...` or one line per problem:
a video in both train and val of a fold, val parts that overlap or miss a video, a fold whose
train + val is not the list, unbalanced labels, or a test video in any train or val part.

    python StratifiedKFold_verify.py --rgb_list data/manifests/train.txt \
        --test_list data/manifests/test.txt --folds_dir data/manifests --k 5
"""
import argparse
from pathlib import Path

from scripts.core.cli import OneLineParser, run
from scripts.data.folds import format_fold_summary, list_args_parser, resolve_test_list, verify_folds
from scripts.data.manifest import read_manifest


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser(
        "StratifiedKFold_verify.py", add_help=add_help, parents=[list_args_parser()],
        description="Check the folds written by StratifiedKFold.py. Files are numbered from 0 "
                    "(fold0_train.txt); the printed summary numbers folds from 1 (Fold 1 = fold0_*). "
                    "Exit 0 if every check passes, 1 if any fails, 2 on unreadable or missing files.")
    parser.add_argument("--folds_dir", type=Path, default=Path("data/manifests"),
                        help="folder holding fold{i}_train.txt, fold{i}_val.txt and optional "
                             "fold{i}_test.txt (default: data/manifests)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    entries = read_manifest(args.rgb_list, check_exists=False)  # checking needs no feature files
    test_list, said = resolve_test_list(args.rgb_list, args.test_list)
    test = read_manifest(test_list, check_exists=False) if test_list is not None else None
    print(said)
    report = verify_folds(entries, args.folds_dir, args.k, test, source=args.rgb_list.name,
                          test_source=test_list.name if test is not None else "the test list")
    print(format_fold_summary(report.counts))
    print()
    if report.ok:
        checked = "train/val disjoint, val parts disjoint and covering all"
        leak = ", no test video in any train/val" if any("Test" in c for c in report.counts) else ""
        print(f"OK: {args.k} folds in {args.folds_dir}: {checked} {len(entries)} videos of "
              f"{args.rgb_list}, labels balanced{leak}")
        return 0
    for problem in report.problems:
        print(problem)
    print(f"FAILED: {len(report.problems)} problems in the folds in {args.folds_dir}")
    return 1


if __name__ == "__main__":
    run(main)
