r"""Make train/test manifests from a feature folder, or write the embedded synthetic data set.

    # the official UCF-Crime split (lines like Abuse/Abuse001_x264.mp4) mapped onto your features
    python makelist.py --features_dir data/ucf_x3d --train_split Anomaly_Train.txt \
        --test_split Anomaly_Test.txt --out_train data/manifests/train.txt --out_test data/manifests/test.txt
    # a stratified split of whatever is in the folder
    python makelist.py --features_dir data/ucf_x3d --test_ratio 0.2 --seed 0
    # the synthetic UCF-Crime-shaped data set (no download), with its own train.txt / test.txt
    python makelist.py --synthetic data/synthetic --n_train 200 --n_test 60 --layout map

Manifests hold `path label class` lines, paths relative to the manifest's folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.cli import run
from scripts.errors import MateError
from scripts.lists import split_official, split_stratified
from scripts.manifest import format_count_table, write_manifest


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("makelist.py", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    lists = parser.add_argument_group("manifests from a feature folder")
    lists.add_argument("--features_dir", type=Path, default=None,
                       help="folder of .npy feature files, searched recursively (class sub-folders "
                            "give the class; a name containing 'Normal' is normal)")
    lists.add_argument("--out_train", type=Path, default=Path("data/manifests/train.txt"),
                       help="training manifest to write (default: data/manifests/train.txt)")
    lists.add_argument("--out_test", type=Path, default=Path("data/manifests/test.txt"),
                       help="test manifest to write (default: data/manifests/test.txt)")
    lists.add_argument("--train_split", type=Path, default=None,
                       help="official split file (UCF-Crime's Anomaly_Train.txt, lines like "
                            "Abuse/Abuse001_x264.mp4); needs --test_split (default: none = stratified split)")
    lists.add_argument("--test_split", type=Path, default=None,
                       help="official test split file (UCF-Crime's Anomaly_Test.txt) (default: none)")
    lists.add_argument("--test_ratio", type=float, default=0.2,
                       help="test fraction of the stratified split used without split files (default: 0.2)")
    synth = parser.add_argument_group("the embedded synthetic data set")
    synth.add_argument("--synthetic", type=Path, default=None, metavar="DIR",
                       help="write the synthetic data set into DIR (features/, train.txt, test.txt) "
                            "instead of listing a feature folder (default: off)")
    synth.add_argument("--n_train", type=int, default=200, help="synthetic training videos (default: 200)")
    synth.add_argument("--n_test", type=int, default=60, help="synthetic test videos (default: 60)")
    synth.add_argument("--layout", choices=("map", "sequence"), default="map",
                       help="'map': one [192,16,10,10] array per video; 'sequence': [T, D] with T "
                            "varying per video, plus a frame-level annotation file (default: map)")
    synth.add_argument("--feature_dim", type=int, default=192,
                       help="channels (map) or vector size (sequence) of synthetic features (default: 192)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split or of the synthetic data (default: 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace manifests (or a synthetic data set) that already exist (default: refuse)")
    return parser


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise MateError(f"{existing[0]}: already exists; pass --overwrite to replace it")


def make_synthetic_set(args: argparse.Namespace) -> int:
    from scripts.synthetic import make_synthetic  # numpy-heavy generator, only needed here

    out = args.synthetic
    refuse_existing([out / "train.txt", out / "test.txt"], args.overwrite)
    train, test = make_synthetic(out, n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                                 layout=args.layout, feature_dim=args.feature_dim)
    print(format_count_table({"train": train, "test": test}))
    print(f"wrote {len(train)} + {len(test)} synthetic videos ({args.layout}) and "
          f"{out / 'train.txt'}, {out / 'test.txt'}")
    return 0


def make_lists(args: argparse.Namespace) -> int:
    if args.features_dir is None:
        raise MateError("--features_dir is required (or --synthetic DIR for the synthetic data set)")
    if (args.train_split is None) != (args.test_split is None):
        raise MateError("--train_split and --test_split go together")
    refuse_existing([args.out_train, args.out_test], args.overwrite)
    if args.train_split is not None:
        result = split_official(args.features_dir, args.train_split, args.test_split)
        how = f"official split {args.train_split.name} / {args.test_split.name}"
    else:
        result = split_stratified(args.features_dir, test_ratio=args.test_ratio, seed=args.seed)
        how = f"stratified split, test_ratio {args.test_ratio}, seed {args.seed}"
    write_manifest(args.out_train, result.train, header=f"made by makelist.py: {how}")
    write_manifest(args.out_test, result.test, header=f"made by makelist.py: {how}")
    print(format_count_table({"train": result.train, "test": result.test}))
    print(f"wrote {args.out_train} ({len(result.train)} videos) and {args.out_test} ({len(result.test)} videos)")
    if result.unused:
        print(f"note: {len(result.unused)} feature files are in neither split, e.g. {result.unused[:3]}")
    for split_file, names in result.missing.items():
        print(f"missing: {len(names)} videos of {split_file} have no feature file in {args.features_dir}:",
              file=sys.stderr)
        for name in names:
            print(f"  {name}", file=sys.stderr)
    return 1 if result.missing else 0


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    return make_synthetic_set(args) if args.synthetic is not None else make_lists(args)


if __name__ == "__main__":
    run(main)
