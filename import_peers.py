r"""Import the features, lists and frame ground truth of the peers' public repositories as they are on disk,
into manifests and an annotation file this repo trains and tests on (docs/benchmarks.md, "Peers' features").

    # RTFM / MGFN / S3R's UCF-Crime I3D ([T, 10, 2048] per video; lists CRLF with Windows paths; GT 1,114,144)
    python import_peers.py --family rtfm --dataset ucf --train_list RTFM/list/ucf-i3d.list \
        --test_list RTFM/list/ucf-i3d-test.list --gt RTFM/list/gt-ucf.npy --features_root /data/UCF_ten_crop_i3d \
        --out_dir data/peers/ucf_rtfm
    # Wu et al.'s I3D as DeepMIL / UR-DMU / PEL4VAD / BN-WVAD use it ([T, 1024] per crop; GT 1,109,680)
    python import_peers.py --family wu --dataset ucf --train_list UR-DMU/list/UCF_Train.list \
        --test_list UR-DMU/list/UCF_Test.list --gt UR-DMU/frame_label/gt-ucf.npy --features_root /data/UCF-I3D \
        --out_dir data/peers/ucf_wu
    # XD-Violence (five crops) with XDVioDet's gt.npy; ShanghaiTech with RTFM's per-video masks
    python import_peers.py --family wu --dataset xd --train_list XDVioDet/list/rgb.list \
        --test_list XDVioDet/list/rgb_test.list --gt XDVioDet/list/gt.npy --features_root /data/xd --out_dir data/peers/xd
    python import_peers.py --family rtfm --dataset shanghaitech --train_list RTFM/list/shanghai-i3d-train-10crop.list \
        --test_list RTFM/list/shanghai-i3d-test-10crop.list --frame_masks RTFM/list/test_frame_mask \
        --features_root /data/SH_ten_crop_i3d --out_dir data/peers/sh

then, e.g. `python main.py --config configs/ucf_i3d.json --train_list data/peers/ucf_rtfm/fold0_train.txt ...` after
StratifiedKFold.py, and `python test.py ... --gt data/peers/ucf_rtfm/test_gt.txt` for the frame-level figures.
Labels by each data set's rule (names); the repos' index rule (anomalous first) is cross-checked, and a GT
whose length is not 16 x the test features' snippets (the other family's GT, say) is refused in one line.
"""
import argparse
from pathlib import Path

from scripts.core.cli import OneLineParser, run
from scripts.data.peers import DATASETS, FAMILIES


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser("import_peers.py", description=__doc__, add_help=add_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=tuple(FAMILIES), required=True,
                        help="rtfm: " + FAMILIES["rtfm"] + "; wu: " + FAMILIES["wu"])
    parser.add_argument("--dataset", choices=tuple(DATASETS), required=True,
                        help="the benchmark: its label rule, its published split and GT lengths")
    parser.add_argument("--train_list", type=Path, required=True, help="the peer repository's training list file")
    parser.add_argument("--test_list", type=Path, required=True, help="the peer repository's test list file")
    parser.add_argument("--gt", type=Path, default=None,
                        help="the concatenated frame GT (.npy: gt-ucf.npy, gt.npy, gt-sh.npy) of the test list's "
                             "videos in its order (default: none; then --frame_masks)")
    parser.add_argument("--frame_masks", type=Path, default=None,
                        help="a folder of per-video frame masks <video>.npy (ShanghaiTech's test_frame_mask/) "
                             "instead of --gt (default: none)")
    parser.add_argument("--features_root", type=Path, default=None,
                        help="where the feature files lie here, when the lists' paths are another machine's "
                             "(G:\\..., /home/...): a list path is tried as written, beside the list, under this "
                             "folder, then by its file name anywhere under it (default: none)")
    parser.add_argument("--crops", choices=("mean", "each"), default="mean",
                        help="mean = one input per video (wu: its crop files averaged; rtfm: its [T, K, D] file, "
                             "read by main.py --crop_mode); each = every crop a manifest line, trained as its own "
                             "sample and averaged per video at validation and test, as UR-DMU, PEL4VAD and "
                             "BN-WVAD (rtfm: K links to the one file, line k reading crop k) (default: mean)")
    parser.add_argument("--out_dir", type=Path, required=True, help="folder to write the import into")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier import there (default: refuse)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars (default: off)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.data.peer_import import import_peers

    record = import_peers(args)
    print(f"{record['dataset']}, {args.family} family ({record['crops']} crops): {record['train_videos']} training "
          f"videos ({record['train_anomalous']} anomalous), {record['test_videos']} test videos "
          f"({record['test_anomalous']} anomalous), GT {record['test_frames']:,} frames = 16 x "
          f"{record['test_snippets']:,} snippets ({record['test_positive_frames']:,} anomalous)")
    print("wrote " + ", ".join(record["written"]) + f", {args.out_dir / 'import.json'}")
    return 0


if __name__ == "__main__":
    run(main)
