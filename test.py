r"""Score a test manifest with a trained checkpoint: per-video scores, ROC-AUC, PR-AUC (DESIGN §6-7).

    python test.py --test_list data/manifests/fold0_test.txt --checkpoint runs/motion_cond_fast/checkpoint_best.pth
    python test.py --test_list test.txt --checkpoint runs/seq/checkpoint_best.pth \
        --gt Temporal_Anomaly_Annotation_for_Testing_Videos.txt      # + frame-level, sequence features

The model is rebuilt from the checkpoint alone. Writes into --out_dir (default: the checkpoint's run
folder): predictions.csv (video, label, class, score), preds_fold{X}.npy (scores in manifest order),
test_metrics.json (ROC-AUC, PR-AUC, per-class ROC-AUC, bootstrap 95% CIs, frame-level with --gt),
plots/roc_curve.png and plots/pr_curve.png.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.cli import run
from scripts.option import get_runtime_parser


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("test.py", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[get_runtime_parser()])
    parser.add_argument("--test_list", type=Path, required=True, help="test manifest (required)")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="checkpoint written by main.py, e.g. runs/<exp>/checkpoint_best.pth (required)")
    parser.add_argument("--fold", type=str, default=None,
                        help="X of preds_fold{X}.npy (default: from 'fold<N>' in the manifest's or the run's name)")
    parser.add_argument("--out_dir", type=Path, default=None,
                        help="where the outputs go (default: the checkpoint's folder)")
    parser.add_argument("--batch_size", type=int, default=32, help="videos per batch for map features (default: 32)")
    parser.add_argument("--gt", type=Path, default=None,
                        help="frame annotations (UCF-Crime's Temporal_Anomaly_Annotation_for_Testing_Videos.txt "
                             "or the form with frame counts) for frame-level ROC-AUC/AP; sequence features "
                             "only (default: none)")
    parser.add_argument("--n_boot", type=int, default=1000, help="bootstrap replicates of the 95%% CIs (default: 1000)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars (default: off)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.evaluation import format_report, run_test

    metrics = run_test(args)
    print(format_report(metrics))
    print("wrote " + ", ".join(metrics["written"]))
    frame = metrics.get("frame")
    if frame and frame["unlisted"]:
        print(f"note: {len(frame['unlisted'])} annotated videos are not in {args.test_list}: "
              + ", ".join(frame["unlisted"][:10]) + (" ..." if len(frame["unlisted"]) > 10 else ""))
    if frame and frame["problems"]:
        print(f"{len(frame['problems'])} test videos were left out of the frame-level metrics:", file=sys.stderr)
        for line in frame["problems"]:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
