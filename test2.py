r"""Motion ON vs OFF: paired ROC curves and a test of the AUC difference on the same test videos.

    # two models trained on the same fold: the full one and the no_motion ablation (configs/ablations/
    # no_motion.json: no MotionMap and no difference features, the one OFF free of motion)
    python test2.py --test_list data/manifests/fold0_test.txt \
        --checkpoint_on runs/fast_fold0/checkpoint_best.pth --checkpoint_off runs/no_motion_fold0/checkpoint_best.pth
    # one model scored twice: with its MotionMap, and with the MotionMap set to 0 (its difference
    # features |x_t - x_{t-1}| still carry motion)
    python test2.py --test_list data/manifests/fold0_test.txt --checkpoint runs/fast_fold0/checkpoint_best.pth

Prints both ROC-AUCs, a line saying what OFF is and which motion it still sees, and ΔAUC. Writes
(default: the ON run's plots/ folder) motion_on_off_roc.png (both ROC curves, AUC and 95% CI in the
legend) and motion_on_off.json (AUCs, DeLong's test and a paired bootstrap of ΔAUC = ON − OFF).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.core.cli import OneLineParser, run
from scripts.option import get_analysis_parser, get_bootstrap_parser, get_runtime_parser


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser("test2.py", description=__doc__, add_help=add_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           parents=[get_analysis_parser(), get_runtime_parser(), get_bootstrap_parser()])
    parser.add_argument("--checkpoint_on", type=Path, default=None, help="the model with motion (default: none)")
    parser.add_argument("--checkpoint_off", type=Path, default=None,
                        help="the model without motion, e.g. the no_motion ablation on the same fold (no "
                             "MotionMap, no difference features) (default: score --checkpoint_on / --checkpoint "
                             "with an all-zero MotionMap; its difference features still carry motion)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.diagnostics.analysis_inputs import load_analysis_run
    from scripts.core.fileio import write_json
    from scripts.diagnostics.motion_on_off import compare_on_off, plot, score_on_off, summary_lines

    if args.checkpoint_on is not None:
        args.checkpoint = args.checkpoint_on
    loaded = load_analysis_run(args, "test2.py", need_checkpoint=True)
    on, off, how, off_model = score_on_off(loaded, args.checkpoint_off, args.test_list, batch_size=args.batch_size,
                                           progress=not args.no_progress, force_settings=args.force_settings)
    labels = loaded.ds.labels.numpy().astype(int)
    result = compare_on_off(labels, on, off, n_boot=args.n_boot, seed=args.seed)
    result.update(checkpoint_on=str(loaded.checkpoint), off=how, off_model=off_model,
                  test_list=str(args.test_list), n_videos=len(labels))
    paths = [plot(labels, on, off, result, loaded.out_dir / "motion_on_off_roc.png"),
             write_json(loaded.out_dir / "motion_on_off.json", result)]
    for line in summary_lines(result, loaded.checkpoint, how, off_model):
        print(line)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    run(main)
