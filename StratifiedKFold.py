r"""Split a training manifest into K stratified train/val folds (and copy the test list beside them).

Fold i's val part is the i-th of K stratified parts; its train part is the other K-1 parts. The default
rule is the published one: scikit-learn's StratifiedKFold(n_splits=K, shuffle=True, random_state=42)
over the manifest's lines in file order, by label, so the official UCF-Crime manifest of makelist.py
gives the published folds (fold{i} = the published fold_{i+1}). --stratify class also balances the
classes within each label. Writes fold{i}_train.txt, fold{i}_val.txt and fold{i}_test.txt (the test
manifest: --test_list, else the one makelist.py wrote beside --rgb_list) for i = 0..K-1, then prints
the per-fold counts (Fold 1 = fold0_*).

    python StratifiedKFold.py --rgb_list ucf_x3d_train.txt --k 5 --out_dir data/manifests/
    python StratifiedKFold.py --rgb_list data/synthetic/train.txt --test_list data/synthetic/test.txt \
        --k 5 --out_dir data/manifests/demo --stratify class --seed 0
"""
import argparse
from pathlib import Path

from scripts.core.cli import OneLineParser, run, seed_int
from scripts.core.locks import LOCK_NAME, exclusive_lock
from scripts.data.crops import as_videos, count_videos
from scripts.core.errors import MateError
from scripts.data.folds import (PUBLISHED_SEED, STRATIFY_RULES, fold_counts, format_fold_summary, list_args_parser,
                           make_folds, resolve_test_list, write_folds)
from scripts.data.manifest import format_count_table, read_manifest


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser(
        "StratifiedKFold.py", add_help=add_help, parents=[list_args_parser()], description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", type=Path, default=Path("data/manifests"),
                        help="folder for the fold files (default: data/manifests)")
    parser.add_argument("--seed", type=seed_int, default=PUBLISHED_SEED,
                        help=f"shuffling seed; the same seed gives the same files (default: {PUBLISHED_SEED}, "
                             "the published folds' random_state)")
    parser.add_argument("--stratify", choices=STRATIFY_RULES, default="label",
                        help="label: the published rule (scikit-learn's StratifiedKFold over the lines in "
                             "file order, by label); class: by label and, within it, by class, "
                             "independent of the list's order (default: label)")
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
    test_list, said = resolve_test_list(args.rgb_list, args.test_list)
    test = None
    if test_list is not None:
        test = read_manifest(test_list, check_exists=False)
        check_no_overlap(entries, test, args.rgb_list, test_list)
    folds = make_folds(entries, k=args.k, seed=args.seed, stratify=args.stratify, source=str(args.rgb_list))
    header = (f"StratifiedKFold.py --rgb_list {args.rgb_list} --k {args.k} --seed {args.seed} "
              f"--stratify {args.stratify}")
    with exclusive_lock(Path(args.out_dir) / LOCK_NAME, what=f"fold folder {args.out_dir}"):  # one writer at a time
        paths = write_folds(folds, args.out_dir, test, header=header, overwrite=args.overwrite)
    print(said)
    if len(as_videos(entries, source=str(args.rgb_list))) != len(entries):
        print(f"{args.rgb_list}: a per-crop manifest, {count_videos(entries, source=str(args.rgb_list))}; the "
              "counts below are of videos, and a video's crops stay in one fold")
    videos = [(as_videos(tr), as_videos(va)) for tr, va in folds]
    print(format_fold_summary([fold_counts(tr, va, as_videos(test) if test is not None else None)
                               for tr, va in videos]))
    print()
    print("videos per class in each val part:")
    print(format_count_table({f"fold{i}": va for i, (_, va) in enumerate(videos)}))
    parts = "train,val,test" if test is not None else "train,val"
    print(f"\nwrote {len(paths)} files to {args.out_dir}: fold{{0..{args.k - 1}}}_{{{parts}}}.txt "
          f"(Fold 1 = fold0_*)")
    return 0


if __name__ == "__main__":
    run(main)
