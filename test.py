r"""Score a test manifest with a trained checkpoint: per-video scores, ROC-AUC, PR-AUC (docs/design.md §6-7).

    python test.py --test_list data/manifests/fold0_test.txt --checkpoint runs/motion_cond_fast/checkpoint_best.pth
    python test.py --test_list test.txt --checkpoint runs/seq/checkpoint_best.pth \
        --gt Temporal_Anomaly_Annotation_for_Testing_Videos.txt --plot_videos 10   # + frame level
    python test.py --video my_camera.mp4 --checkpoint runs/seq/checkpoint_best.pth \
        --backbone_checkpoint checkpoints/X3D_L.pyth                 # score a new video
    python test.py --test_list data/manifests/test.txt --checkpoint data/published/MATE_base.pkl
                                                    # the authors' weights (variant paper_base)

The model is rebuilt from the checkpoint alone. Writes into --out_dir (default: the checkpoint's run
folder; runs/<name> for a published state dict such as MATE_base.pkl): predictions.csv (video, label,
class, score), preds_fold{X}.npy (scores in manifest order), test_metrics.json (ROC-AUC, PR-AUC,
per-class ROC-AUC, bootstrap 95% CIs, frame-level with --gt), plots/roc_curve.png and
plots/pr_curve.png. With --video: <video>_scores.csv (start_frame, end_frame, seconds, score per
snippet) and <video>_scores.png (default: <run>/videos/).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.cli import run
from scripts.option import get_bootstrap_parser, get_runtime_parser
from scripts.x3d import PRESETS


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("test.py", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[get_runtime_parser(), get_bootstrap_parser()])
    parser.add_argument("--test_list", type=Path, default=None, help="test manifest (this or --video is required)")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="checkpoint written by main.py, e.g. runs/<exp>/checkpoint_best.pth, or the "
                             "authors' published data/published/MATE_base.pkl (required)")
    parser.add_argument("--fold", type=str, default=None,
                        help="X of preds_fold{X}.npy (default: from 'fold<N>' in the manifest's or the run's name)")
    parser.add_argument("--out_dir", type=Path, default=None,
                        help="where the outputs go (default: the checkpoint's folder; runs/<name> for a "
                             "published state dict)")
    parser.add_argument("--batch_size", type=int, default=32, help="videos per batch for map features (default: 32)")
    parser.add_argument("--gt", type=Path, default=None,
                        help="frame annotations for frame-level ROC-AUC/AP, sequence features only: "
                             "UCF-Crime's Temporal_Anomaly_Annotation_for_Testing_Videos.txt or the form with "
                             "frame counts, or XD-Violence's XD_Annotation.txt (then frame AP is the headline); "
                             "the format is read from the content (default: none)")
    parser.add_argument("--plot_videos", type=int, default=0,
                        help="with --gt: frame-score curves with the annotation shaded for the N highest-scored "
                             "videos, in plots/videos/ (default: 0)")
    parser.add_argument("--force_settings", action="store_true",
                        help="score features (--test_list) or extract a video (--video) with other extraction "
                             "settings than the checkpoint's training features had, with a warning; without "
                             "it such a mismatch is refused (default: off)")
    video = parser.add_argument_group("scoring a new video (--video)")
    video.add_argument("--video", type=Path, default=None,
                       help="a video file to extract and score snippet by snippet (default: none)")
    video.add_argument("--backbone", default=None, choices=tuple(PRESETS),
                       help="X3D preset; it must be the one the checkpoint's training features were made with "
                            "(default: the checkpoint's, from its training features' sidecars; x3d_l with the "
                            "shared features' preprocessing for map features without sidecars)")
    video.add_argument("--backbone_checkpoint", type=Path, default=None,
                       help="local X3D weights (pytorchvideo's .pyth, e.g. X3D_L.pyth), no network needed "
                            "(default: none, the official Kinetics-400 weights as with --pretrained)")
    video.add_argument("--pretrained", action="store_true",
                       help="pytorchvideo's official Kinetics-400 X3D weights, as the shared features were made "
                            "with, from torch's hub cache ($TORCH_HOME/hub/checkpoints), downloaded there the "
                            "first time (default: on unless --backbone_checkpoint or --random_weights is given)")
    video.add_argument("--random_weights", action="store_true",
                       help="random X3D weights: meaningless scores, for smoke tests only (default: off)")
    video.add_argument("--crops", type=int, default=None, choices=(1, 3, 10),
                       help="spatial crops per clip (default: the checkpoint's, else 1)")
    video.add_argument("--decoder", default="cv2", choices=("cv2", "av"), help="video decoder (default: cv2)")
    video.add_argument("--threshold", type=float, default=0.5,
                       help="snippets scoring at least this form the reported intervals (default: 0.5)")
    return parser


def score_one_video(args) -> int:
    from scripts.single_video import score_video, top_intervals, write_video_outputs
    from scripts.devices import resolve_device, use_threads

    use_threads(args.threads)
    scores = score_video(args.video, args.checkpoint, backbone=args.backbone,
                         backbone_checkpoint=args.backbone_checkpoint, pretrained=args.pretrained,
                         random_weights=args.random_weights, device=resolve_device(args.device),
                         crops=args.crops, decoder=args.decoder, progress=not args.no_progress,
                         force_settings=args.force_settings)
    print(scores.settings)
    if args.out_dir is not None:
        out_dir = args.out_dir
    else:
        from scripts.checkpoint import load_checkpoint, output_folder
        out_dir = output_folder(args.checkpoint, load_checkpoint(args.checkpoint)) / "videos"
    paths = write_video_outputs(scores, args.video, out_dir, args.threshold)
    fps = scores.fps or 30.0
    print(f"{args.video}: video score {scores.video_score:.4f} ({len(scores.snippet_scores)} snippets of "
          f"{scores.stride} frames, {scores.num_frames} frames)")
    intervals = top_intervals(scores, args.threshold)
    if not intervals:
        print(f"no snippet scores {args.threshold:g} or more")
    for first, last, peak in intervals:
        print(f"  frames {first}-{last} ({first / fps:.1f}-{(last + 1) / fps:.1f} s): peak {peak:.4f}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.errors import MateError
    from scripts.evaluation import format_report, run_test

    if (args.test_list is None) == (args.video is None):
        raise MateError("give either --test_list (a manifest of features) or --video (a video file)")
    if args.video is not None:
        return score_one_video(args)

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
