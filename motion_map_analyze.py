"""Motion Entropy and Motion Area Ratio of the MotionMap, for normal vs anomalous videos and per class.

    python motion_map_analyze.py --test_list data/manifests/fold0_test.txt           # features alone
    python motion_map_analyze.py --test_list data/manifests/fold0_test.txt --exp_name fast_fold0   # the model's MotionMap

Without a checkpoint the MotionMap is computed from the features (--motion_window); with --checkpoint or
--exp_name it is the model's own (its motion window; features checked against the checkpoint). Prints

    [NORMAL] Motion Entropy : 7.2806 Motion Area Ratio : 0.0100
    [ANOMALY] Motion Entropy : 7.2930 Motion Area Ratio : 0.0169

then one line per class, and writes motion_stats.csv, motion_stats.json, motion_histogram.png and
motion_over_time.png (default: runs/<exp_name>/plots/, or runs/motion_analysis/plots/).
Motion Entropy: Shannon entropy (bits) of the 256-bin histogram of a video's MotionMap on [0, 1];
Motion Area Ratio: share of cells above tau (default: mean + 2 std of the normal videos' cells).
"""
from __future__ import annotations

import argparse
import csv
import io

import numpy as np

from scripts.cli import run
from scripts.option import get_analysis_parser, get_runtime_parser, resolve_analysis_paths


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("motion_map_analyze.py", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[get_analysis_parser(), get_runtime_parser()])
    parser.add_argument("--motion_window", type=int, default=2,
                        help="preceding steps of the MotionMap's reference without a checkpoint (default: 2)")
    parser.add_argument("--tau", type=float, default=None,
                        help="area-ratio threshold on [0, 1] (default: mean + 2 std of the normal videos' cells)")
    parser.add_argument("--crop_mode", choices=("mean", "space"), default="mean",
                        help="for [T, K, D] features without a checkpoint (default: mean)")
    parser.add_argument("--time_bins", type=int, default=32,
                        help="points of normalised time for the motion-over-time curves (default: 32)")
    return parser


def motion_maps(args, checkpoint, device) -> tuple[list, list, list[np.ndarray], str]:
    """Per video: MotionMap [T, H, W] (float32), one video at a time so memory stays flat."""
    import torch
    from tqdm import tqdm

    from scripts.dataset import load_features, read_manifest
    from scripts.errors import MateError
    from scripts.motion import motion_map

    if checkpoint is not None:
        from scripts.evaluation import load_for_scoring

        model, ckpt, ds = load_for_scoring(checkpoint, args.test_list, device=device, progress=not args.no_progress,
                                       force_settings=args.force_settings)
        if not ckpt["model_config"].get("use_motion_map", True):
            raise MateError(f"{checkpoint}: this model was trained with --no_motion_map; it has no MotionMap")
        window, source = ckpt["model_config"]["motion_window"], f"the MotionMap of {checkpoint}"
        entries, items = ds.entries, (ds[i][0] for i in range(len(ds)))
    else:
        entries = read_manifest(args.test_list, require_both_labels=True)
        window, source = args.motion_window, f"the features' MotionMap (window {args.motion_window})"
        items = (torch.from_numpy(load_features(e.path, crop_mode=args.crop_mode)) for e in entries)
    maps = []
    for x in tqdm(items, total=len(entries), desc="motion maps", unit="video", disable=args.no_progress):
        maps.append(motion_map(x[None].to(device), window=window)[0].cpu().numpy())  # [T, H, W]
    return [e.label for e in entries], [e.cls for e in entries], maps, source


def write_outputs(table, labels, maps, out_dir, tau, time_bins):
    from scripts.fileio import write_json, write_text
    from scripts.motion_stats import resample_curve
    from scripts.plots import new_figure, save_figure

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["group", "videos", "motion_entropy", "motion_area_ratio"])
    for name, row in table.items():
        writer.writerow([name, row["videos"], f"{row['motion_entropy']:.6f}", f"{row['motion_area_ratio']:.6f}"])
    paths = [write_text(out_dir / "motion_stats.csv", buf.getvalue()),
             write_json(out_dir / "motion_stats.json", {"tau": tau, "groups": table})]
    labels = np.asarray(labels)
    fig = new_figure()
    ax = fig.add_subplot()
    for y, name in ((0, "normal"), (1, "anomalous")):
        values = np.concatenate([m.ravel() for m, lab in zip(maps, labels) if lab == y])
        ax.hist(values, bins=64, range=(0, 1), density=True, histtype="step", label=f"{name} ({(labels == y).sum()} videos)")
    ax.axvline(tau, color="grey", linestyle="--", label=f"τ = {tau:.3f}")
    ax.set(xlabel="MotionMap value", ylabel="density", yscale="log", title="MotionMap values")
    ax.legend()
    paths.append(save_figure(fig, out_dir / "motion_histogram.png"))
    fig = new_figure()
    ax = fig.add_subplot()
    t = np.linspace(0, 1, time_bins)
    for y, name in ((0, "normal"), (1, "anomalous")):
        curves = np.stack([resample_curve(m.mean(axis=(1, 2)), time_bins) for m, lab in zip(maps, labels) if lab == y])
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        ax.plot(t, mean, label=name)
        ax.fill_between(t, mean - std, mean + std, alpha=0.2)
    ax.set(xlabel="normalised time", ylabel="mean MotionMap over space", title="motion over time (mean ± std)")
    ax.legend()
    paths.append(save_figure(fig, out_dir / "motion_over_time.png"))
    return paths


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.analysis_inputs import fill_analysis_inputs
    from scripts.motion_stats import class_table, format_line, normal_threshold
    from scripts.devices import resolve_device

    fill_analysis_inputs(args, "motion_map_analyze.py")
    checkpoint, out_dir = resolve_analysis_paths(args, default_exp="motion_analysis")
    labels, classes, maps, source = motion_maps(args, checkpoint, resolve_device(args.device))
    tau = args.tau if args.tau is not None else normal_threshold(maps, labels)
    table = class_table(maps, labels, classes, tau)
    print(f"{len(maps)} videos, {source}; tau = {tau:.4f}")
    for name, row in table.items():
        print(format_line(name, row))
    paths = write_outputs(table, labels, maps, out_dir, tau, args.time_bins)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    run(main)
