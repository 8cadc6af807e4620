r"""Make train/test manifests from a feature folder, or write the embedded synthetic data set.

    # UCF-Crime features: the official split (1,610 / 290, data/ucf_crime/Anomaly_{Train,Test}.txt),
    # chosen by itself when the folder holds UCF-Crime's video names
    python makelist.py --features_dir data/ucf_x3d/ --out_train ucf_x3d_train.txt --out_test ucf_x3d_test.txt
    # other split files (lines like Abuse/Abuse001_x264.mp4)
    python makelist.py --features_dir data/ucf_x3d --train_split my_train.txt --test_split my_test.txt
    # another data set: a stratified random split of whatever is in the folder
    python makelist.py --features_dir data/other --split random --test_ratio 0.2 --seed 0
    # the synthetic UCF-Crime-shaped data set (no download), with its own train.txt / test.txt
    python makelist.py --synthetic data/synthetic --n_train 200 --n_test 60 --layout map
    python makelist.py --synthetic data/synthetic_hard --difficulty hard   # the harder regime (docs/data.md)
    python makelist.py --synthetic data/ucf_synth --names official --feature_dim 16   # the 1,900 official names
    python makelist.py --check data/ucf_x3d                  # is a download complete? counts, shapes, names
    # the hard sequence regime at the field's widths, in a peer's own file format (then import_peers.py)
    python makelist.py --peer_synthetic data/peer_synth/ucf_rtfm --peer_format ucf_rtfm --n_train 160 --n_test 80

Manifests hold `path label class` lines, paths relative to the manifest's folder; with the official
split, the anomalous videos in the split file's order, then the normal ones (the published manifests'
order, which the published folds depend on). The training manifest's header names its test manifest,
so StratifiedKFold.py can write fold{i}_test.txt without being told.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.core.cli import OneLineParser, finite_float, run, seed_int
from scripts.data.download_check import FORMATS as DOWNLOADS


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser("makelist.py", description=__doc__, add_help=add_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    lists = parser.add_argument_group("manifests from a feature folder")
    lists.add_argument("--features_dir", type=Path, default=None,
                       help="folder of .npy feature files, searched recursively (class sub-folders "
                            "give the class; a name containing 'Normal' is normal; XD-Violence names "
                            "(..._label_B2-G-0) give label and class from their codes)")
    lists.add_argument("--out_train", type=Path, default=Path("data/manifests/train.txt"),
                       help="training manifest to write (default: data/manifests/train.txt)")
    lists.add_argument("--out_test", type=Path, default=Path("data/manifests/test.txt"),
                       help="test manifest to write (default: data/manifests/test.txt)")
    lists.add_argument("--split", choices=("auto", "official", "random"), default="auto",
                       help="official: the split files (UCF-Crime's official split unless --train_split/"
                            "--test_split name others); random: a split stratified by class with "
                            "--test_ratio, for other data sets; auto: official when at least half of the "
                            "feature files carry UCF-Crime video names, else random (default: auto)")
    lists.add_argument("--train_split", type=Path, default=None,
                       help="training split file, lines like Abuse/Abuse001_x264.mp4; implies --split "
                            "official (default: data/ucf_crime/Anomaly_Train.txt)")
    lists.add_argument("--test_split", type=Path, default=None,
                       help="test split file; implies --split official (default: "
                            "data/ucf_crime/Anomaly_Test.txt)")
    lists.add_argument("--test_ratio", type=finite_float, default=0.2,
                       help="test fraction of --split random (default: 0.2)")
    check = parser.add_argument_group("checking a download (docs/data.md, \"Where the data lives\")")
    check.add_argument("--check", type=Path, default=None, metavar="DIR",
                       help="check a downloaded feature folder instead of listing it: file count, each file's "
                            "array shape (from its header), missing and extra names; one line each, exit 1 if "
                            "incomplete (default: off)")
    check.add_argument("--check_format", choices=tuple(DOWNLOADS), default="ucf_x3d",
                       help="what a complete download holds: ucf_x3d 1,900 [192, 16, 10, 10] (the shared MATE "
                            "features); ucf_rtfm 1,900 [T, 10, 2048] <video>_i3d.npy; ucf_wu 19,000 [T, 1024] "
                            "<video>__0..9.npy; xd_wu 23,770 [T, 1024]; sh_rtfm 437 [T, 10, 2048] "
                            "(default: ucf_x3d)")
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
    synth.add_argument("--difficulty", choices=("easy", "hard"), default="easy",
                       help="easy: the demo set, where the full model reaches about 0.98 ROC-AUC and the "
                            "components tie; hard: smaller, shorter, weaker events whose motion depends on the "
                            "class, and more distracting motion in normal videos (shake, crowds, passers-by), "
                            "hard enough to choose defaults on (docs/data.md) (default: easy)")
    synth.add_argument("--names", choices=("numbered", "official"), default="numbered",
                       help="numbered: --n_train / --n_test videos named Abuse001_x264, ... per class; official: "
                            "the 1,900 videos of UCF-Crime's official split by their names, so the official-split "
                            "commands run on the folder as written (--n_train / --n_test unused; small "
                            "--feature_dim keeps it small: 192 channels make 1.2 GB) (default: numbered)")
    synth.add_argument("--peer_synthetic", type=Path, default=None, metavar="DIR",
                       help="write the hard synthetic sequence regime into DIR in a peer's own file format (lists, "
                            "per-video or per-crop .npy files, gt.npy; docs/data.md), to be read with import_peers.py "
                            "(default: none)")
    synth.add_argument("--peer_format", choices=("ucf_rtfm", "ucf_wu", "xd_wu"), default="ucf_rtfm",
                       help="with --peer_synthetic: ucf_rtfm ([T, 10, 2048] per video, RTFM's CRLF lists), ucf_wu "
                            "([T, 1024] per crop, ten crops, UR-DMU's lists) or xd_wu (XD-Violence, five crops) "
                            "(default: ucf_rtfm)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the split or of the synthetic data (default: 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace manifests (or a synthetic data set) that already exist (default: refuse)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.data.makelist_run import check_folder, make_lists, make_peer_synthetic_set, make_synthetic_set

    if args.check is not None:
        return check_folder(args)
    if args.peer_synthetic is not None:
        return make_peer_synthetic_set(args)
    return make_synthetic_set(args) if args.synthetic is not None else make_lists(args)


if __name__ == "__main__":
    run(main)
