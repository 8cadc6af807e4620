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
Motion Area Ratio: share of cells above tau, by default the 99th percentile of the normal videos' cells
(--tau_percentile), so the normal videos' ratio is about 0.01 by construction; or an absolute --tau.
The first line says which tau was used and how it was chosen.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.core.cli import OneLineParser, finite_float, run
from scripts.core.errors import MateError
from scripts.diagnostics.motion_stats import TAU_PERCENTILE
from scripts.option import get_analysis_parser, get_runtime_parser


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser("motion_map_analyze.py", description=__doc__, add_help=add_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           parents=[get_analysis_parser(), get_runtime_parser()])
    parser.add_argument("--motion_window", type=int, default=2,
                        help="preceding steps of the MotionMap's reference without a checkpoint (default: 2)")
    threshold = parser.add_mutually_exclusive_group()
    threshold.add_argument("--tau", type=finite_float, default=None,
                           help="absolute area-ratio threshold on the motion magnitude, >= 0 (default: from "
                                "--tau_percentile)")
    threshold.add_argument("--tau_percentile", type=finite_float, default=TAU_PERCENTILE,
                           help="tau = this percentile of the normal videos' motion magnitudes (every cell), so "
                                "their area ratio is about 1 - p/100; a lower p counts weaker motion "
                                f"(default: {TAU_PERCENTILE:g})")
    parser.add_argument("--train_list", type=Path, default=None,
                        help="training manifest whose normal videos set tau (default: the analysed manifest's "
                             "normal videos)")
    parser.add_argument("--crop_mode", choices=("mean", "space"), default="mean",
                        help="for [T, K, D] features without a checkpoint (default: mean)")
    parser.add_argument("--time_bins", type=int, default=32,
                        help="points of normalised time for the motion-over-time curves (default: 32)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.tau is not None and not args.tau >= 0.0:
        raise MateError(f"--tau {args.tau:g}: a motion magnitude is a norm, so tau must be >= 0")
    if not 0.0 <= args.tau_percentile <= 100.0:
        raise MateError(f"--tau_percentile {args.tau_percentile:g}: must lie in [0, 100]")
    from scripts.diagnostics.analysis_inputs import load_analysis_run
    from scripts.diagnostics.motion_analysis import motion_maps, normal_magnitudes, write_outputs
    from scripts.diagnostics.motion_stats import choose_threshold, class_table, format_line

    loaded = load_analysis_run(args, "motion_map_analyze.py", default_exp="motion_analysis")
    labels, classes, maps, magnitudes, source, window = motion_maps(
        loaded, args.test_list, motion_window=args.motion_window, crop_mode=args.crop_mode,
        progress=not args.no_progress)
    if args.train_list is not None and args.tau is None:
        crop_mode = (loaded.ckpt or {}).get("feature", {}).get("crop_mode", args.crop_mode)
        reference = normal_magnitudes(args.train_list, window=window, crop_mode=crop_mode, device=loaded.device,
                                      progress=not args.no_progress)
        tau, rule = choose_threshold(reference, [0] * len(reference), percentile=args.tau_percentile,
                                     source=str(args.train_list))
    else:
        tau, rule = choose_threshold(magnitudes, labels, tau=args.tau, percentile=args.tau_percentile,
                                     source=str(args.test_list) if args.tau is None else "")
    table = class_table(maps, magnitudes, labels, classes, tau)
    print(f"{len(maps)} videos, {source}; tau = {tau:.4f} ({rule})")
    for name, row in table.items():
        print(format_line(name, row))
    paths = write_outputs(table, labels, maps, magnitudes, loaded.out_dir, tau, args.time_bins, tau_rule=rule,
                          window=window)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    run(main)
