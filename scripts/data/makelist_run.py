"""makelist.py's work: manifests from a feature folder (an official or a stratified random split), the
synthetic data sets (this repo's own and the peers' formats), and the check of a downloaded folder. Each
writer holds its output folder's lock and refuses to replace manifests without --overwrite.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.core.errors import MateError
from scripts.core.locks import LOCK_NAME, exclusive_lock
from scripts.data.lists import OFFICIAL_TEST, OFFICIAL_TRAIN, holds_ucf_crime, split_official, split_stratified
from scripts.data.manifest import TEST_MANIFEST_KEY, format_count_table, relative_to_folder, write_manifest

SHOW_MISSING = 20  # missing videos listed by name; the rest are counted


def refuse_existing(paths: list[Path], overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise MateError(f"{existing[0]}: already exists; pass --overwrite to replace it")


def make_synthetic_set(args: argparse.Namespace) -> int:
    from scripts.data.synthetic import make_synthetic  # numpy-heavy generator, only needed here

    out = args.synthetic
    with exclusive_lock(out / LOCK_NAME, what=f"synthetic data folder {out}"):  # one writer at a time
        refuse_existing([out / "train.txt", out / "test.txt"], args.overwrite)
        train, test = make_synthetic(out, n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                                     layout=args.layout, feature_dim=args.feature_dim, difficulty=args.difficulty,
                                     names=args.names)
    print(format_count_table({"train": train, "test": test}))
    print(f"wrote {len(train)} + {len(test)} synthetic videos ({args.layout}, {args.difficulty}) and "
          f"{out / 'train.txt'}, {out / 'test.txt'}")
    return 0


def make_peer_synthetic_set(args: argparse.Namespace) -> int:
    from scripts.data.peer_synthetic import FORMATS, make_peer_set

    out = args.peer_synthetic
    with exclusive_lock(out / LOCK_NAME, what=f"synthetic data folder {out}"):
        refuse_existing([out / "train.list", out / "test.list", out / "gt.npy"], args.overwrite)
        done = make_peer_set(out, fmt=args.peer_format, n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    dataset, family, _, _ = FORMATS[args.peer_format]
    print(f"wrote {done['train']} + {done['test']} synthetic videos ({args.peer_format}: [T, {done['crops']}, "
          f"{done['channels']}]) and {out / 'train.list'}, {out / 'test.list'}, {out / 'gt.npy'}; next: "
          f"python import_peers.py --family {family} --dataset {dataset} --train_list {out / 'train.list'} "
          f"--test_list {out / 'test.list'} --gt {out / 'gt.npy'} --features_root {out} --out_dir <import folder>")
    return 0


def choose_split(args: argparse.Namespace) -> str:
    """'official' or 'random' from --split and the split-file flags."""
    named = args.train_split is not None or args.test_split is not None
    if args.split == "random" and named:
        raise MateError("--split random takes no --train_split/--test_split (they name an official split)")
    if named or args.split == "official":
        return "official"
    if args.split == "random":
        return "random"
    return "official" if holds_ucf_crime(args.features_dir) else "random"


def make_lists(args: argparse.Namespace) -> int:
    if args.features_dir is None:
        raise MateError("--features_dir is required (or --synthetic DIR for the synthetic data set)")
    refuse_existing([args.out_train, args.out_test], args.overwrite)
    if choose_split(args) == "official":
        train_split, test_split = args.train_split or OFFICIAL_TRAIN, args.test_split or OFFICIAL_TEST
        result = split_official(args.features_dir, train_split, test_split)
        shipped = (train_split, test_split) == (OFFICIAL_TRAIN, OFFICIAL_TEST)
        how = ("UCF-Crime's official split (the repo's data/ucf_crime/Anomaly_Train.txt, Anomaly_Test.txt)"
               if shipped else f"split files {train_split} / {test_split}")
    else:
        result = split_stratified(args.features_dir, test_ratio=args.test_ratio, seed=args.seed)
        how = f"random split stratified by class, test_ratio {args.test_ratio}, seed {args.seed}"
    test_ref = relative_to_folder(args.out_test, args.out_train.parent)
    write_manifest(args.out_test, result.test, header=f"made by makelist.py: {how}")
    write_manifest(args.out_train, result.train,
                   header=f"made by makelist.py: {how}\n{TEST_MANIFEST_KEY} {test_ref}")
    print(f"split: {how}")
    print(format_count_table({"train": result.train, "test": result.test}))
    print(f"wrote {args.out_train} ({len(result.train)} videos) and {args.out_test} ({len(result.test)} videos)")
    if result.unused:
        print(f"note: {len(result.unused)} feature files are in neither split, e.g. {result.unused[:3]}")
    for split_file, names in result.missing.items():
        print(f"missing: {len(names)} videos of {split_file} have no feature file in {args.features_dir}:",
              file=sys.stderr)
        for name in names[:SHOW_MISSING]:
            print(f"  {name}", file=sys.stderr)
        if len(names) > SHOW_MISSING:
            print(f"  ... and {len(names) - SHOW_MISSING} more", file=sys.stderr)
    return 1 if result.missing else 0


def check_folder(args) -> int:
    """--check DIR: is a downloaded feature folder complete (scripts/data/download_check.py)?"""
    from scripts.data.download_check import check_download

    lines, complete = check_download(args.check, args.check_format)
    for line in lines:
        print(line)
    return 0 if complete else 1
