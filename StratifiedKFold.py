r"""Split a training manifest into K stratified train/val folds (and copy the test list beside them).

Fold i's val part is the i-th of K parts stratified by label and, within a label, by class; its train
part is the other K-1 parts. Writes fold{i}_train.txt, fold{i}_val.txt and, with --test_list,
fold{i}_test.txt for i = 0..K-1, then prints the per-fold counts (Fold 1 = the fold0_* files).

    python StratifiedKFold.py --rgb_list data/manifests/train.txt --test_list data/manifests/test.txt \\
        --k 5 --out_dir data/manifests --seed 0
"""
import argparse
from pathlib import Path

from scripts.cli import run
from scripts.errors import MateError
from scripts.folds import fold_counts, format_fold_summary, list_args_parser, stratified_folds, write_folds
from scripts.manifest import format_count_table, read_manifest


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        "StratifiedKFold", add_help=add_help, parents=[list_args_parser()],
        description="Write K stratified train/val(/test) manifest triples. Files are numbered from 0 "
                    "(fold0_train.txt); the printed summary numbers folds from 1 (Fold 1 = fold0_*).")
    parser.add_argument("--out_dir", type=Path, default=Path("data/manifests"),
                        help="folder for the fold files (default: data/manifests)")
    parser.add_argument("--seed", type=int, default=0,
                        help="shuffling seed (default: 0); the same seed gives the same files")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace fold files that already exist with other videos (default: off; "
                             "identical files are always rewritten)")
    return parser


def check_no_overlap(train, test, train_path: Path, test_path: Path) -> None:
    """A video in both lists would be validated or trained on and then tested on: refuse."""
    shared = sorted({e.name for e in train} & {e.name for e in test})
    if shared:
        shown = ", ".join(shared[:5]) + (", ..." if len(shared) > 5 else "")
        raise MateError(f"{train_path} and {test_path} share {len(shared)} videos ({shown}); "
                        f"a test video must not be in the training list")


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    entries = read_manifest(args.rgb_list, check_exists=False)  # splitting needs no feature files
    test = None
    if args.test_list is not None:
        test = read_manifest(args.test_list, check_exists=False)
        check_no_overlap(entries, test, args.rgb_list, args.test_list)
    folds = stratified_folds(entries, k=args.k, seed=args.seed, source=str(args.rgb_list))
    header = f"StratifiedKFold.py --rgb_list {args.rgb_list} --k {args.k} --seed {args.seed}"
    paths = write_folds(folds, args.out_dir, test, header=header, overwrite=args.overwrite)
    print(format_fold_summary([fold_counts(tr, va, test) for tr, va in folds]))
    print()
    print("videos per class in each val part:")
    print(format_count_table({f"fold{i}": va for i, (_, va) in enumerate(folds)}))
    parts = "train,val,test" if test is not None else "train,val"
    print(f"\nwrote {len(paths)} files to {args.out_dir}: fold{{0..{args.k - 1}}}_{{{parts}}}.txt "
          f"(Fold 1 = fold0_*)")
    return 0


if __name__ == "__main__":
    run(main)
