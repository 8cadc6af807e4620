"""Embeddings and motion of a trained model (test1.py): the video embeddings z in 2-D, per-time motion
of normal vs anomalous videos on a common time axis, and how far apart the two groups lie.

Outputs, in a run's plots/ folder: embedding_<method>.csv and .png, motion_trajectories.png and
motion_per_time.csv (per class and time step: mean, std, videos).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from scripts.core.fileio import write_text
from scripts.diagnostics.motion_stats import resample_curve
from scripts.core.plots import new_figure, save_figure

GROUPS = ((0, "normal", "C0"), (1, "anomalous", "C3"))  # label, legend name, colour


def project(z: np.ndarray, method: str, n_neighbors: int, seed: int) -> np.ndarray:
    """[N, E] -> [N, 2]; UMAP with a fixed seed, or PCA, on the standardised embeddings."""
    z = (z - z.mean(axis=0)) / (z.std(axis=0) + 1e-8)
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(z)
    umap = cached_umap()
    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(z) - 1), random_state=seed)
    return reducer.fit_transform(z)


# umap-learn's modules whose numba functions UMAP.fit compiles (pynndescent's for more than 4,096 points)
UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.distances", "umap.sparse",
                "pynndescent.distances", "pynndescent.utils", "pynndescent.pynndescent_", "pynndescent.rp_trees")


def cached_umap():
    """umap-learn, with numba's on-disk cache turned on for its compiled functions: umap declares them
    without `cache=True`, so every process compiled them anew (about 7 s of each test1.py run on 2 cores);
    with the cache, the first run compiles and stores them beside umap's sources and later runs load them
    (0.4 s). `make install` warms the cache (warm_umap)."""
    import importlib

    import umap  # umap-learn; imported late: its import alone takes a second
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    for name in UMAP_MODULES:
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, CPUDispatcher) and isinstance(value._cache, NullCache):
                value.enable_caching()
    return umap


def warm_umap() -> None:
    """Compile (or load) UMAP's numba functions once, as test1.py's default projection will."""
    project(np.random.default_rng(0).standard_normal((64, 8), dtype=np.float32), "umap", n_neighbors=15, seed=0)


def video_motion(model_motion: list[np.ndarray], ckpt: dict[str, Any], ds) -> list[np.ndarray]:
    """Per video its motion over time [T_i]: the model's MotionMap averaged over space, or, for a model
    without a MotionMap (it saw none), the features' own MotionMap: with the config's motion_window
    (--no_motion_map), or MateConfig's default window for the MIL baseline, whose config has none."""
    from scripts.model import uses_motion_map
    from scripts.models.motion import motion_map

    config = ckpt["model_config"]
    if uses_motion_map(config):
        return model_motion
    window = motion_window_of(ckpt)
    return [motion_map(ds[i][0][None], window=window)[0].mean(dim=(1, 2)).numpy() for i in range(len(ds))]


def motion_curves(motion: list[np.ndarray], bins: int, first: int = 0) -> tuple[np.ndarray, int]:
    """Per-time motion of every video on a common time axis [N, T'] from step `first` on, and the time step
    of its first column: its own steps first..T-1 if all videos have T, else `bins` points of normalised
    time over those steps (first column 0). Steps before `first` = the motion window have no full
    reference (t = 0 none: M = 0; t = 1 one step, so the noise's residual is larger): they made a dip and
    a spike at the start of every curve, the same in every video, so the plots leave them out."""
    trimmed = [m[first:] if len(m) > first else m for m in motion]
    lengths = {len(m) for m in motion}
    if len(lengths) == 1:
        return np.stack(trimmed), (first if lengths.pop() > first else 0)
    return np.stack([resample_curve(m, bins) for m in trimmed]), 0


def motion_window_of(ckpt: dict[str, Any]) -> int:
    """The motion window of a checkpoint's model (MateConfig's default for the MIL baseline, which has none)."""
    from scripts.model import MateConfig

    return ckpt["model_config"].get("motion_window", MateConfig.motion_window)


def group_separation(embeddings: np.ndarray, xy: np.ndarray, curves: np.ndarray,
                     labels: np.ndarray) -> dict[str, float]:
    """Silhouette of normal vs anomalous in the embedding and in 2-D; per group the mean motion and
    the mean over videos of the peak motion."""
    from sklearn.metrics import silhouette_score

    normal, anomalous = curves[labels == 0], curves[labels == 1]
    return {"silhouette_embedding": float(silhouette_score(embeddings, labels)),
            "silhouette_2d": float(silhouette_score(xy, labels)),
            "motion_normal": float(normal.mean()), "motion_anomalous": float(anomalous.mean()),
            "peak_normal": float(normal.max(axis=1).mean()), "peak_anomalous": float(anomalous.max(axis=1).mean())}


def embedding_csv(entries: Sequence, xy: np.ndarray) -> str:
    """video,label,class,x,y: one row per video, coordinates to 5 decimals."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video", "label", "class", "x", "y"])
    w.writerows([e.name, e.label, e.cls, f"{p[0]:.5f}", f"{p[1]:.5f}"] for e, p in zip(entries, xy))
    return buf.getvalue()


def motion_per_time_csv(curves: np.ndarray, labels: np.ndarray, classes: np.ndarray, t0: int = 0) -> str:
    """class,t,mean,std,videos for NORMAL, ANOMALY and each anomaly class, at every time step (column i is
    step t0 + i)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["class", "t", "mean", "std", "videos"])
    for cls in ["NORMAL", "ANOMALY"] + sorted(set(classes[labels == 1])):
        mask = labels == 0 if cls == "NORMAL" else labels == 1 if cls == "ANOMALY" else classes == cls
        for step in range(curves.shape[1]):
            w.writerow([cls, t0 + step, f"{curves[mask, step].mean():.6f}", f"{curves[mask, step].std():.6f}",
                        int(mask.sum())])
    return buf.getvalue()


def class_colours(classes: list[str]) -> dict[str, Any]:
    """One distinct colour per anomaly class (tab20: UCF-Crime's 13 classes; tab10 cycled where only 10
    existed, so two classes shared one), Normal in light grey."""
    from matplotlib import colormaps

    anomalous = [c for c in classes if c != "Normal"]
    table = colormaps["tab20"]
    colours = {c: table(i % 20) for i, c in enumerate(anomalous)}
    if "Normal" in classes:
        colours["Normal"] = "lightgrey"
    return colours


def plot_embedding(xy: np.ndarray, labels: np.ndarray, classes: np.ndarray, method: str, path: Path) -> Path:
    """Two scatter plots of the 2-D embedding: by label, and by class (Normal in grey)."""
    fig = new_figure(11, 4.6)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for y, name, color in GROUPS:
        ax1.scatter(*xy[labels == y].T, s=10, c=color, label=name, alpha=0.7)
    colours = class_colours(sorted(set(classes)))
    for cls, colour in colours.items():
        ax2.scatter(*xy[classes == cls].T, s=10, label=cls, alpha=0.7, color=colour)
    ax1.set_title(f"video embeddings ({method}) by label")
    ax2.set_title("by class")
    ax1.legend()
    ax2.legend(fontsize=6, ncol=2)
    return save_figure(fig, path)


def plot_motion_trajectories(curves: np.ndarray, labels: np.ndarray, path: Path, t0: int = 0) -> Path:
    """Mean ± std of the model's per-time motion (its MotionMap, averaged over space), normal vs anomalous;
    column i is time step t0 + i."""
    fig = new_figure()
    ax = fig.add_subplot()
    t = t0 + np.arange(curves.shape[1])
    for y, name, color in GROUPS:
        mean, std = curves[labels == y].mean(axis=0), curves[labels == y].std(axis=0)
        ax.plot(t, mean, color=color, label=f"{name} ({(labels == y).sum()})")
        ax.fill_between(t, mean - std, mean + std, color=color, alpha=0.2)
    ax.set(xlabel=f"time step (from {t0}: earlier steps lack a full motion window)" if t0 else "time step",
           ylabel="the model's MotionMap averaged over space",
           title="motion trajectories the model sees (normalised per video; mean ± std)")
    ax.legend()
    return save_figure(fig, path)


def write_outputs(xy: np.ndarray, curves: np.ndarray, ds, method: str, out_dir: Path, t0: int = 0) -> list[Path]:
    """The four outputs of test1.py in `out_dir`; returns their paths in the order written."""
    labels = np.array([e.label for e in ds.entries])
    classes = np.array([e.cls for e in ds.entries])
    return [write_text(out_dir / f"embedding_{method}.csv", embedding_csv(ds.entries, xy)),
            plot_embedding(xy, labels, classes, method, out_dir / f"embedding_{method}.png"),
            plot_motion_trajectories(curves, labels, out_dir / "motion_trajectories.png", t0),
            write_text(out_dir / "motion_per_time.csv", motion_per_time_csv(curves, labels, classes, t0))]


if __name__ == "__main__":  # make install: python -m scripts.diagnostics.embedding_view
    warm_umap()
