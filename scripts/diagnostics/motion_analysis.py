"""The MotionMaps that motion_map_analyze.py measures, and what it writes about them.

The maps are a model's own (its motion window, the test features checked against its checkpoint) or,
without a checkpoint, computed from the features alone. The numbers (Motion Entropy, Motion Area
Ratio, the per-class table) are scripts.diagnostics.motion_stats'.
Outputs: motion_stats.csv, motion_stats.json, motion_histogram.png and motion_over_time.png.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from scripts.diagnostics.analysis_inputs import AnalysisRun
from scripts.core.fileio import write_json, write_text
from scripts.diagnostics.motion_stats import resample_curve
from scripts.core.plots import new_figure, save_figure

GROUPS = ((0, "normal"), (1, "anomalous"))


def motion_maps(loaded: AnalysisRun, test_list: Path, *, motion_window: int, crop_mode: str,
                progress: bool) -> tuple[list[int], list[str], list[np.ndarray], list[np.ndarray], str, int]:
    """Labels, classes, MotionMaps [T, H, W] (float32) and their un-normalised magnitudes of the test
    videos, one video at a time so memory stays flat, a phrase naming where the maps come from, and the
    motion window used.

    Args:
        loaded (AnalysisRun): with a checkpoint, its model's MotionMap (window from the checkpoint)
            on its checked features; without one, the features' own MotionMap.
        test_list (Path): the manifest, read here only without a checkpoint.
        motion_window (int): preceding steps of the reference, without a checkpoint.
        crop_mode (str): how [T, K, D] features are read without a checkpoint (mean or space).
    """
    import torch

    from scripts.dataset import load_features
    from scripts.data.manifest import read_manifest
    from scripts.core.errors import MateError
    from scripts.model import uses_motion_map

    if loaded.checkpoint is not None:
        config = loaded.ckpt["model_config"]
        if not uses_motion_map(config):
            why = "is the MIL baseline" if config["variant"] == "mil" else "was trained with --no_motion_map"
            raise MateError(f"{loaded.checkpoint}: this model {why}; it has no MotionMap")
        window, source = config["motion_window"], f"the MotionMap of {loaded.checkpoint}"
        ds = loaded.ds
        entries, items = ds.entries, (ds[i][0] for i in range(len(ds)))
    else:
        entries = read_manifest(test_list, require_both_labels=True)
        window, source = motion_window, f"the features' MotionMap (window {motion_window})"
        items = (torch.from_numpy(load_features(e.path, crop_mode=crop_mode)) for e in entries)
    maps, magnitudes = maps_of(items, window=window, device=loaded.device, total=len(entries), progress=progress)
    return [e.label for e in entries], [e.cls for e in entries], maps, magnitudes, source, window


def maps_of(items: Iterable, *, window: int, device, total: int, progress: bool,
            desc: str = "motion maps") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For each feature map [C, T, H, W]: its MotionMap [T, H, W] (divided by the video's maximum, in
    [0, 1]) and the motion magnitude it was made from (the un-normalised residual norms, which the Motion
    Area Ratio thresholds), computed on `device`."""
    from tqdm import tqdm

    from scripts.models.motion import motion_norms, normalise_per_video

    maps, magnitudes = [], []
    for x in tqdm(items, total=total, desc=desc, unit="video", disable=not progress):
        n = motion_norms(x[None].to(device), window=window)  # [1, T, H, W]
        maps.append(normalise_per_video(n, 1e-6)[0].cpu().numpy())
        magnitudes.append(n[0].float().cpu().numpy())
    return maps, magnitudes


def normal_magnitudes(train_list: Path, *, window: int, crop_mode: str, device, progress: bool) -> list[np.ndarray]:
    """The motion magnitudes of a training manifest's normal videos (the reference of the area ratio's tau)."""
    import torch

    from scripts.dataset import load_features
    from scripts.data.manifest import read_manifest

    normal = [e for e in read_manifest(train_list) if e.label == 0]
    items = (torch.from_numpy(load_features(e.path, crop_mode=crop_mode)) for e in normal)
    return maps_of(items, window=window, device=device, total=len(normal), progress=progress,
                   desc="training normals")[1]


def stats_csv(table: dict[str, dict]) -> str:
    """group,videos,motion_entropy,motion_area_ratio: one row per group of scripts.diagnostics.motion_stats.class_table."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["group", "videos", "motion_entropy", "motion_area_ratio"])
    for name, row in table.items():
        writer.writerow([name, row["videos"], f"{row['motion_entropy']:.6f}", f"{row['motion_area_ratio']:.6f}"])
    return buf.getvalue()


def plot_histogram(magnitudes: Sequence[np.ndarray], labels: np.ndarray, tau: float, path: Path) -> Path:
    """Density of all cells' motion magnitudes, normal vs anomalous, on a log scale, with τ marked."""
    fig = new_figure()
    ax = fig.add_subplot()
    top = max(float(max(m.max() for m in magnitudes)), tau) or 1.0
    for y, name in GROUPS:
        values = np.concatenate([m.ravel() for m, lab in zip(magnitudes, labels) if lab == y])
        ax.hist(values, bins=64, range=(0, top), density=True, histtype="step",
                label=f"{name} ({(labels == y).sum()} videos)")
    ax.axvline(tau, color="grey", linestyle="--", label=f"τ = {tau:.3g}")
    ax.set(xlabel="motion magnitude (before the per-video normalisation)", ylabel="density", yscale="log",
           title="motion magnitude of every cell")
    ax.legend()
    return save_figure(fig, path)


def plot_over_time(magnitudes: Sequence[np.ndarray], labels: np.ndarray, time_bins: int, window: int,
                   path: Path) -> Path:
    """Mean ± std of the spatial mean of the un-normalised motion magnitude (the area ratio's quantity) on
    `time_bins` points of normalised time, from step `window` on (earlier steps lack a full reference: 0 at
    t = 0, inflated at t < window). test1.py plots the model's normalised MotionMap over time instead."""
    fig = new_figure()
    ax = fig.add_subplot()
    t = np.linspace(0, 1, time_bins)
    for y, name in GROUPS:
        curves = np.stack([resample_curve((m[window:] if len(m) > window else m).mean(axis=(1, 2)), time_bins)
                           for m, lab in zip(magnitudes, labels) if lab == y])
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        ax.plot(t, mean, label=name)
        ax.fill_between(t, mean - std, mean + std, alpha=0.2)
    ax.set(xlabel=f"normalised time (steps {window}..T-1)", ylabel="motion magnitude, mean over space",
           title="raw motion magnitude over time (not normalised; mean ± std)")
    ax.legend()
    return save_figure(fig, path)


def write_outputs(table: dict[str, dict], labels: Sequence[int], maps: Sequence[np.ndarray],
                  magnitudes: Sequence[np.ndarray], out_dir: Path, tau: float, time_bins: int, *,
                  tau_rule: str, window: int) -> list[Path]:
    """The four outputs of motion_map_analyze.py in `out_dir`; returns their paths in the order written.
    `tau_rule` says in words how τ was chosen (scripts.diagnostics.motion_stats.choose_threshold)."""
    labels = np.asarray(labels)
    return [write_text(out_dir / "motion_stats.csv", stats_csv(table)),
            write_json(out_dir / "motion_stats.json", {"tau": tau, "tau_rule": tau_rule, "groups": table}),
            plot_histogram(magnitudes, labels, tau, out_dir / "motion_histogram.png"),
            plot_over_time(magnitudes, labels, time_bins, window, out_dir / "motion_over_time.png")]
