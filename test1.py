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
import csv
import io

import numpy as np

from scripts.cli import run
from scripts.option import get_analysis_parser, get_runtime_parser, resolve_analysis_paths


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("test1.py", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[get_analysis_parser(), get_runtime_parser()])
    parser.add_argument("--method", choices=("umap", "pca"), default="umap",
                        help="2-D projection: umap (umap-learn) or pca (fast, for tests) (default: umap)")
    parser.add_argument("--n_neighbors", type=int, default=15, help="UMAP neighbours (default: 15)")
    parser.add_argument("--time_bins", type=int, default=32,
                        help="points of normalised time for sequences of different lengths (default: 32)")
    return parser


def project(z: np.ndarray, method: str, n_neighbors: int, seed: int) -> np.ndarray:
    """[N, E] -> [N, 2]; UMAP with a fixed seed, or PCA."""
    z = (z - z.mean(axis=0)) / (z.std(axis=0) + 1e-8)
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(z)
    import umap  # umap-learn; imported late because it compiles with numba on first use

    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(z) - 1), random_state=seed)
    return reducer.fit_transform(z)


def motion_curves(motion: list[np.ndarray], bins: int) -> np.ndarray:
    """Per-time motion of every video on a common time axis: its own T if all agree, else `bins` points."""
    from scripts.motion_stats import resample_curve

    lengths = {len(m) for m in motion}
    if len(lengths) == 1:
        return np.stack(motion)
    return np.stack([resample_curve(m, bins) for m in motion])


def write_outputs(xy, curves, ds, method, out_dir) -> list:
    from scripts.fileio import write_text
    from scripts.plots import new_figure, save_figure

    labels = np.array([e.label for e in ds.entries])
    classes = np.array([e.cls for e in ds.entries])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video", "label", "class", "x", "y"])
    w.writerows([e.name, e.label, e.cls, f"{p[0]:.5f}", f"{p[1]:.5f}"] for e, p in zip(ds.entries, xy))
    paths = [write_text(out_dir / f"embedding_{method}.csv", buf.getvalue())]
    fig = new_figure(11, 4.6)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for y, name, color in ((0, "normal", "C0"), (1, "anomalous", "C3")):
        ax1.scatter(*xy[labels == y].T, s=10, c=color, label=name, alpha=0.7)
    for i, cls in enumerate(sorted(set(classes))):
        ax2.scatter(*xy[classes == cls].T, s=10, label=cls, alpha=0.7, color="lightgrey" if cls == "Normal" else f"C{i % 10}")
    ax1.set_title(f"video embeddings ({method}) by label")
    ax2.set_title("by class")
    ax1.legend()
    ax2.legend(fontsize=6, ncol=2)
    paths.append(save_figure(fig, out_dir / f"embedding_{method}.png"))
    fig = new_figure()
    ax = fig.add_subplot()
    t = np.arange(curves.shape[1])
    for y, name, color in ((0, "normal", "C0"), (1, "anomalous", "C3")):
        mean, std = curves[labels == y].mean(axis=0), curves[labels == y].std(axis=0)
        ax.plot(t, mean, color=color, label=f"{name} ({(labels == y).sum()})")
        ax.fill_between(t, mean - std, mean + std, color=color, alpha=0.2)
    ax.set(xlabel="time step", ylabel="MotionMap averaged over space", title="motion trajectories (mean ± std)")
    ax.legend()
    paths.append(save_figure(fig, out_dir / "motion_trajectories.png"))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["class", "t", "mean", "std", "videos"])
    for cls in ["NORMAL", "ANOMALY"] + sorted(set(classes[labels == 1])):
        mask = labels == 0 if cls == "NORMAL" else labels == 1 if cls == "ANOMALY" else classes == cls
        for step in t:
            w.writerow([cls, int(step), f"{curves[mask, step].mean():.6f}", f"{curves[mask, step].std():.6f}", int(mask.sum())])
    paths.append(write_text(out_dir / "motion_per_time.csv", buf.getvalue()))
    return paths


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from sklearn.metrics import silhouette_score

    from scripts.analysis_inputs import fill_analysis_inputs
    from scripts.evaluation import load_for_scoring
    from scripts.motion import motion_map
    from scripts.scoring import score_dataset
    from scripts.devices import resolve_device

    fill_analysis_inputs(args, "test1.py")
    checkpoint, out_dir = resolve_analysis_paths(args, need_checkpoint=True)
    device = resolve_device(args.device)
    model, ckpt, ds = load_for_scoring(checkpoint, args.test_list, device=device, progress=not args.no_progress,
                                       force_settings=args.force_settings)
    scores = score_dataset(model, ds, device=device, batch_size=args.batch_size, progress=not args.no_progress)
    motion = scores.motion
    if not ckpt["model_config"].get("use_motion_map", True):  # the model saw none: show the features' own
        window = ckpt["model_config"]["motion_window"]
        motion = [motion_map(ds[i][0][None], window=window)[0].mean(dim=(1, 2)).numpy() for i in range(len(ds))]
    xy = project(scores.embeddings, args.method, args.n_neighbors, args.seed)
    curves = motion_curves(motion, args.time_bins)
    paths = write_outputs(xy, curves, ds, args.method, out_dir)
    labels = ds.labels.numpy().astype(int)
    sil_z = silhouette_score(scores.embeddings, labels)
    sil_2d = silhouette_score(xy, labels)
    m0, m1 = curves[labels == 0].mean(), curves[labels == 1].mean()
    p0, p1 = curves[labels == 0].max(axis=1).mean(), curves[labels == 1].max(axis=1).mean()
    print(f"{len(ds)} videos; silhouette of normal vs anomalous: embedding {sil_z:.4f}, {args.method} 2-D {sil_2d:.4f}")
    print(f"mean motion: normal {m0:.4f}, anomalous {m1:.4f}; mean peak motion: normal {p0:.4f}, anomalous {p1:.4f}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    run(main)
