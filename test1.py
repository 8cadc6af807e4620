"""Embeddings and motion of a trained model: UMAP of the video embeddings, motion trajectories.

    python test1.py --test_list data/manifests/fold0_test.txt --exp_name fast_fold0
    python test1.py --test_list test.txt --checkpoint runs/x/checkpoint_best.pth --method pca   # fast fallback

Writes (default: the run's plots/ folder): embedding_<method>.png (the video embeddings z in 2-D,
coloured by label and by class), embedding_<method>.csv, motion_trajectories.png (per-time motion,
the MotionMap averaged over space, mean ± std for normal vs anomalous videos; sequences are put on
--time_bins points of normalised time) and motion_per_time.csv (per class and time step: mean, std,
videos). Prints how far apart the two groups lie in embedding and in motion.
"""
from __future__ import annotations

import argparse

from scripts.core.cli import OneLineParser, run
from scripts.option import get_analysis_parser, get_runtime_parser


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser("test1.py", description=__doc__, add_help=add_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           parents=[get_analysis_parser(), get_runtime_parser()])
    parser.add_argument("--method", choices=("umap", "pca"), default="umap",
                        help="2-D projection: umap (umap-learn) or pca (fast, for tests) (default: umap)")
    parser.add_argument("--n_neighbors", type=int, default=15, help="UMAP neighbours (default: 15)")
    parser.add_argument("--time_bins", type=int, default=32,
                        help="points of normalised time for sequences of different lengths (default: 32)")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.diagnostics.analysis_inputs import load_analysis_run
    from scripts.diagnostics.embedding_view import (group_separation, motion_curves, motion_window_of, project,
                                                    video_motion, write_outputs)
    from scripts.evaluation.scoring import score_dataset

    loaded = load_analysis_run(args, "test1.py", need_checkpoint=True)
    ds = loaded.ds
    scores = score_dataset(loaded.model, ds, device=loaded.device, batch_size=args.batch_size,
                           progress=not args.no_progress)
    motion = video_motion(scores.motion, loaded.ckpt, ds)
    xy = project(scores.embeddings, args.method, args.n_neighbors, args.seed)
    curves, t0 = motion_curves(motion, args.time_bins, first=motion_window_of(loaded.ckpt))
    paths = write_outputs(xy, curves, ds, args.method, loaded.out_dir, t0)
    s = group_separation(scores.embeddings, xy, curves, ds.labels.numpy().astype(int))
    print(f"{len(ds)} videos; silhouette of normal vs anomalous: embedding {s['silhouette_embedding']:.4f}, "
          f"{args.method} 2-D {s['silhouette_2d']:.4f}")
    print(f"mean motion: normal {s['motion_normal']:.4f}, anomalous {s['motion_anomalous']:.4f}; mean peak motion: "
          f"normal {s['peak_normal']:.4f}, anomalous {s['peak_anomalous']:.4f}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    run(main)
