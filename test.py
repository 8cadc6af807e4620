r"""Score a test manifest with a trained checkpoint: per-video scores, ROC-AUC, PR-AUC (docs/design.md §6-7).

    python test.py --test_list data/manifests/fold0_test.txt --checkpoint runs/motion_cond_fast/checkpoint_best.pth
    python test.py --test_list test.txt --checkpoint runs/seq/checkpoint_best.pth \
        --gt Temporal_Anomaly_Annotation_for_Testing_Videos.txt --plot_videos 10   # + frame level
    python test.py --video my_camera.mp4 --checkpoint runs/seq/checkpoint_best.pth \
        --backbone_checkpoint checkpoints/X3D_L.pyth                 # score your own video
    python test.py --video_root cameras/ --checkpoint data/published/MATE_base.pkl \
        --backbone_checkpoint checkpoints/X3D_L.pyth                 # a whole folder, ranked
    python test.py --test_list data/manifests/test.txt --checkpoint data/published/MATE_base.pkl
                                                    # the authors' weights (variant paper_base)

The model is rebuilt from the checkpoint alone. Writes into --out_dir (default: the checkpoint's run
folder; runs/<name> for a published state dict such as MATE_base.pkl): predictions.csv (video, label,
class, score), preds_fold{X}.npy (scores in manifest order), test_metrics.json (ROC-AUC, PR-AUC,
per-class ROC-AUC, bootstrap 95% CIs, frame-level with --gt), plots/roc_curve.png and
plots/pr_curve.png. With --video / --video_root (default out_dir: <run>/videos/), per video a folder named
by its path relative to the root: scores.csv (start_s, end_s, start_frame, end_frame, score),
timeline.png and overlay.mp4; for a folder also summary.csv and failures.csv (scripts/evaluation/video_outputs.py).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from scripts.core.cli import OneLineParser, finite_float, run
from scripts.option import get_bootstrap_parser, get_runtime_parser
from scripts.evaluation.single_video import DEFAULT_THRESHOLD, SLIDING_SECONDS
from scripts.extraction.backbone_args import add_backbone_arguments, add_clip_batching_arguments
from scripts.evaluation.upstream_flags import add_upstream_flags


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser("test.py", description=__doc__, add_help=add_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           parents=[get_runtime_parser(plots=True), get_bootstrap_parser()])
    parser.add_argument("--test_list", type=Path, default=None, help="test manifest (this or --video is required)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint written by main.py, e.g. runs/<exp>/checkpoint_best.pth, or the "
                             "authors' published data/published/MATE_base.pkl (required, or upstream's "
                             "--model_name NAME for runs/NAME/checkpoint_best.pth)")
    parser.add_argument("--fold", type=str, default=None,
                        help="X of preds_fold{X}.npy (default: from 'fold<N>' in the manifest's or the run's name)")
    parser.add_argument("--out_dir", type=Path, default=None,
                        help="where the outputs go (default: the checkpoint's folder; runs/<name> for a "
                             "published state dict)")
    parser.add_argument("--overwrite", action="store_true",
                        help="--test_list: replace the outputs of another test list in --out_dir (default: "
                             "refuse; the same list again always replaces its own)")
    parser.add_argument("--batch_size", type=int, default=32, help="videos per batch for map features (default: 32)")
    parser.add_argument("--gt", type=Path, default=None,
                        help="frame annotations for frame-level ROC-AUC/AP, sequence features only: "
                             "UCF-Crime's Temporal_Anomaly_Annotation_for_Testing_Videos.txt or the form with "
                             "frame counts, or XD-Violence's XD_Annotation.txt (then frame AP is the headline); "
                             "the format is read from the content; with --video / --video_root it shades a "
                             "listed video's annotated seconds on its timeline (default: none)")
    parser.add_argument("--plot_videos", type=int, default=0,
                        help="with --gt: frame-score curves with the annotation shaded for the N highest-scored "
                             "videos, in plots/videos/ (default: 0)")
    parser.add_argument("--force_settings", action="store_true",
                        help="score features (--test_list) or extract a video (--video) with other extraction "
                             "settings than the checkpoint's training features had, with a warning; without "
                             "it such a mismatch is refused (default: off)")
    video = parser.add_argument_group("scoring your own videos (--video / --video_root)")
    video.add_argument("--video", type=Path, default=None,
                       help="a video file to extract and score over time (default: none)")
    video.add_argument("--video_root", type=Path, default=None,
                       help="a folder of videos, searched recursively like feature_extractor.py's: each is "
                            "scored into <out_dir>/<its path without extension>/, with summary.csv (ranked by "
                            "peak score) and failures.csv (default: none)")
    add_backbone_arguments(video, from_checkpoint=True)
    video.add_argument("--stream", type=str, default=None, metavar="SOURCE",
                       help="score a live source as it streams: an rtsp:// udp:// http:// URL, a device "
                            "(/dev/video0), or - for an MPEG-TS on standard input; one JSON line per point on "
                            "standard output (then it carries nothing else) or in --events; scores.csv and "
                            "timeline.png in --out_dir written as it goes; ends on EOF, Ctrl-C, SIGTERM or "
                            "silence (scripts/evaluation/stream.py) (default: none)")
    video.add_argument("--events", type=Path, default=None,
                       help="--stream: append the JSON lines to this file instead of standard output "
                            "(default: standard output)")
    video.add_argument("--stream_timeout", type=finite_float, default=10.0,
                       help="--stream: seconds without a frame before the source is reopened or the run ends; "
                            "a network source gets 2 s more, FFmpeg's time to learn its format (default: 10)")
    video.add_argument("--reconnect", type=int, default=0,
                       help="--stream: times a silent or broken source is reopened before the run ends (default: 0)")
    video.add_argument("--threshold", type=finite_float, default=None,
                       help="the alarm threshold, one rule everywhere: a score at or above it counts as anomalous "
                            "(--video: intervals, red frames, --stream alerts; --test_list: the false alarm rate, "
                            "beside the rate at 0.5) (default: the validation-selected threshold stored in the "
                            f"checkpoint; {DEFAULT_THRESHOLD:g} for videos of checkpoints without one, e.g. the "
                            "published ones, where --test_list reports the rate at 0.5 only)")
    video.add_argument("--window_clips", type=int, default=None,
                       help="map checkpoints: clips per sliding window of the curve (default: about "
                            f"{SLIDING_SECONDS:g} s, 4 clips of X3D-L's 2.67 s)")
    add_clip_batching_arguments(video, "--clip_batch_size")
    add_upstream_flags(parser, "test")
    video.add_argument("--no_overlay", action="store_true",
                       help="skip overlay.mp4 (a second decoding pass) (default: written)")
    return parser


def main(argv=None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    from scripts.core.errors import MateError
    from scripts.evaluation.evaluation import format_report, run_test

    from scripts.evaluation.upstream_flags import resolve_test_checkpoint

    resolve_test_checkpoint(args, parser)
    if args.n_boot < 1:
        raise MateError(f"--n_boot: must be at least 1, got {args.n_boot}")
    if args.threshold is not None and not (math.isfinite(args.threshold) and 0 <= args.threshold <= 1):
        raise MateError(f"--threshold: must be a score in [0, 1], got {args.threshold}")

    given = [name for name in ("test_list", "video", "video_root", "stream") if getattr(args, name) is not None]
    if len(given) != 1:
        raise MateError("give one of --test_list (a manifest of features), --video (a video file), --video_root "
                        "(a folder of videos) or --stream (a live source)")
    if args.test_list is None:
        from scripts.evaluation.video_run import score_videos

        return score_videos(args)

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
