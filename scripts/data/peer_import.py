"""import_peers.py's work: a peer repository's lists, features and frame GT (scripts/data/peers.py) turned into
this repo's manifests and annotation file, checked on the way (docs/benchmarks.md, "Peers' features").

Written into --out_dir:
    features/<video>.npy   rtfm family: a relative link to the peer's [T, 10, 2048] file (read with
                           --crop_mode mean: the crops averaged, or space: the crops as positions); wu family
                           with --crops mean: the mean of the video's crop files, [T, D]
    features/<video>__<k>.npy  --crops each: one manifest line per crop, as the peers train
                           (scripts/data/crops.py); wu family: a link to each crop file; rtfm family: K links
                           to the video's [T, K, D] file, line k reading its crop k (nothing written apart)
    train.txt, test.txt    manifests `<path> <label> <class>`, in the lists' order (anomalous first)
    test_gt.txt            the frame GT of the test videos in this repo's annotation forms, each video's
                           16 x T frames exactly the peer's (test.py --gt; main.py --oracle_gt)
    import.json            what was read and checked: family, data set, lists, GT, counts
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scripts.core.errors import MateError
from scripts.core.fileio import save_npy, write_text
from scripts.core.locks import LOCK_NAME, exclusive_lock
from scripts.data.manifest import VideoEntry, write_manifest
from scripts.data.peers import (DATASETS, FAMILIES, FileFinder, PeerVideo, annotation_text, check_index_rule,
                                count_snippets, gt_from_concatenated, gt_from_masks, read_peer_list, relative_link)


def feature_entries(v: PeerVideo, family: str, crops: str, folder: Path) -> list[VideoEntry]:
    """The manifest line(s) of a video (see the module docstring): one file, or with --crops each one link
    per crop, `<video>__<k>.npy` (scripts/data/crops.py): to each crop file (wu), or K to the one [T, K, D]
    file (rtfm)."""
    if crops == "each":
        files = (v.files if family == "wu" else
                 v.files * int(np.load(v.files[0], mmap_mode="r", allow_pickle=False).shape[1]))
        out = []
        for k, f in enumerate(files):
            relative_link(f, folder / f"{v.name}__{k}.npy")
            out.append(VideoEntry(folder / f"{v.name}__{k}.npy", v.label, v.cls))
        return out
    path = folder / f"{v.name}.npy"
    if family == "rtfm":
        relative_link(v.files[0], path)
    else:
        arrays = [np.load(f) for f in v.files]
        save_npy(path, np.mean(arrays, axis=0, dtype=np.float64).astype(arrays[0].dtype))
    return [VideoEntry(path, v.label, v.cls)]


def import_peers(args: argparse.Namespace) -> dict:
    """Read, check and write (see the module docstring); returns import.json's record."""
    if (args.gt is None) == (args.frame_masks is None):
        raise MateError("pass exactly one of --gt (the concatenated frame GT .npy) and --frame_masks (a folder "
                        "of per-video masks, ShanghaiTech's test_frame_mask/)")
    out_dir = Path(args.out_dir)
    with exclusive_lock(out_dir / LOCK_NAME, what=f"import folder {out_dir}"):  # one writer at a time
        return import_into(args, out_dir)


def import_into(args: argparse.Namespace, out_dir: Path) -> dict:
    if (out_dir / "import.json").exists() and not args.overwrite:
        raise MateError(f"{out_dir}: holds an import already; pass --overwrite to replace it")
    finder = FileFinder(args.features_root)
    train = read_peer_list(args.train_list, args.family, args.dataset, finder)
    check_index_rule(train, args.train_list, args.dataset, args.family)
    test = read_peer_list(args.test_list, args.family, args.dataset, finder)
    shared = sorted({v.name for v in train} & {v.name for v in test})
    if shared:
        raise MateError(f"{args.test_list}: {len(shared)} videos are also in {args.train_list} (e.g. {shared[:3]})")
    for videos, path in ((train, args.train_list), (test, args.test_list)):
        count_snippets(videos, path, args.family)
    gt = (gt_from_concatenated(args.gt, test, args.dataset, args.family) if args.gt is not None
          else gt_from_masks(args.frame_masks, test))
    folder = out_dir / "features"
    folder.mkdir(parents=True, exist_ok=True)
    manifests = {}
    for split, videos in (("train", train), ("test", test)):
        entries = [e for v in tqdm(videos, desc=f"{split} features", unit="video", disable=args.no_progress)
                   for e in feature_entries(v, args.family, args.crops, folder)]
        manifests[split] = write_manifest(out_dir / f"{split}.txt", entries, header=(
            f"import_peers.py --family {args.family} --dataset {args.dataset}: {args.train_list if split == 'train' else args.test_list}"))
    gt_path = write_text(out_dir / "test_gt.txt", annotation_text(test, gt, args.dataset))
    record = {"family": args.family, "family_means": FAMILIES[args.family], "dataset": DATASETS[args.dataset],
              "train_list": str(args.train_list), "test_list": str(args.test_list),
              "gt": str(args.gt or args.frame_masks), "crops": len(test[0].files) if args.family == "wu" else
              int(np.load(test[0].files[0], mmap_mode="r").shape[1]),
              "crop_input": {"each": "every crop a manifest line: a training sample of its own, and the mean "
                                     "over a video's crops at validation and test" + (
                                         "" if args.family == "wu" else
                                         " (line k links the video's [T, K, D] file and reads its crop k)"),
                             "mean": "each video's crop files averaged" if args.family == "wu" else
                             "one [T, K, D] file per video: --crop_mode mean averages the crops"}[args.crops],
              "train_videos": len(train), "train_anomalous": sum(v.label for v in train),
              "test_videos": len(test), "test_anomalous": sum(v.label for v in test),
              "test_snippets": sum(v.snippets for v in test), "test_frames": int(sum(g.size for g in gt)),
              "test_positive_frames": int(sum(int(g.sum()) for g in gt)),
              "written": [str(manifests["train"]), str(manifests["test"]), str(gt_path)]}
    write_text(out_dir / "import.json", json.dumps(record, indent=2) + "\n")
    return record
