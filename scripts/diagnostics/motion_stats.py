"""Motion diagnostics (docs/design.md §8): Motion Entropy and Motion Area Ratio of MotionMaps, per class.

- Motion Entropy: Shannon entropy (bits) of the 256-bin histogram of a video's MotionMap values on
  [0, 1] (at most 8 bits), averaged over the videos of a class.
- Motion Area Ratio: fraction of a video's cells whose motion magnitude (the residual norm before the
  MotionMap divides it by the video's maximum) lies above τ, averaged over a class; by default τ = the
  99th percentile of the normal videos' cells of the training manifest (--train_list), else of the
  analysed one, so the normal ratio is about 0.01 there and another group's reads against that.

Why un-normalised: a MotionMap is divided by its video's maximum, so in a video of noise-level motion
most cells lie near that maximum while in a video with one strong event the event sets the maximum and
the rest of the map falls far below it. A threshold on the normalised map therefore counted anomalous
videos LOWER than normal ones (make demo's set: 0.0029-0.0041 against 0.0100), the opposite of what the
ratio is for. On the magnitudes a strong event's cells pass τ and a quiet video's do not
(tests/test_diagnostics.py). The entropy stays on the normalised map (a histogram on [0, 1]).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

BINS = 256
TAU_PERCENTILE = 99.0  # the default τ: this percentile of the normal videos' cells


def motion_entropy(motion: np.ndarray, bins: int = BINS) -> float:
    """Entropy in bits of the histogram of `motion` values on [0, 1]."""
    counts, _ = np.histogram(np.clip(np.asarray(motion, dtype=np.float64).ravel(), 0.0, 1.0),
                             bins=bins, range=(0.0, 1.0))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def motion_area_ratio(motion: np.ndarray, tau: float) -> float:
    """Share of cells above `tau` (of the motion magnitudes, module docstring)."""
    return float((np.asarray(motion) > tau).mean())


def normal_threshold(maps: Sequence[np.ndarray], labels: Sequence[int],
                     percentile: float = TAU_PERCENTILE) -> float:
    """τ = the `percentile`-th percentile (linear interpolation) over every cell of the normal videos'
    motion magnitudes: at most (100 − percentile)% of those cells lie above it."""
    assert 0.0 <= percentile <= 100.0, f"percentile must lie in [0, 100], got {percentile}"
    normal = [np.asarray(m, dtype=np.float64).ravel() for m, y in zip(maps, labels) if y == 0]
    if sum(m.size for m in normal) == 0:
        raise ValueError("the threshold needs at least one normal video")
    return float(np.percentile(np.concatenate(normal), percentile))


def choose_threshold(magnitudes: Sequence[np.ndarray], labels: Sequence[int], *, tau: float | None = None,
                     percentile: float = TAU_PERCENTILE, source: str = "") -> tuple[float, str]:
    """τ and how it was chosen, in words: `tau` as given, else `normal_threshold` at `percentile` of the
    normal videos among `magnitudes` (`source` names their manifest in the words)."""
    if tau is not None:
        return float(tau), "given by --tau"
    n_normal = sum(1 for y in labels if y == 0)
    of = f" of {source}" if source else ""
    return (normal_threshold(magnitudes, labels, percentile),
            f"percentile {percentile:g} of the motion magnitudes of the {n_normal} normal videos{of}")


def class_table(maps: Sequence[np.ndarray], magnitudes: Sequence[np.ndarray], labels: Sequence[int],
                classes: Sequence[str], tau: float) -> dict[str, dict[str, float]]:
    """Mean entropy (of the MotionMaps) and area ratio (of the magnitudes, above `tau`) for NORMAL,
    ANOMALY and each anomaly class, with video counts."""
    entropy = np.array([motion_entropy(m) for m in maps])
    area = np.array([motion_area_ratio(m, tau) for m in magnitudes])
    labels, classes = np.asarray(labels), np.asarray(classes)
    groups = {"NORMAL": labels == 0, "ANOMALY": labels == 1}
    groups.update({c: classes == c for c in sorted(set(classes[labels == 1].tolist()))})  # NORMAL is above
    return {name: {"motion_entropy": float(entropy[mask].mean()), "motion_area_ratio": float(area[mask].mean()),
                   "videos": int(mask.sum())}
            for name, mask in groups.items() if mask.any()}


def format_line(name: str, row: dict[str, float]) -> str:
    """`[NORMAL] Motion Entropy : 7.2806 Motion Area Ratio : 0.0100`"""
    return f"[{name}] Motion Entropy : {row['motion_entropy']:.4f} Motion Area Ratio : {row['motion_area_ratio']:.4f}"


def resample_curve(curve: np.ndarray, n: int) -> np.ndarray:
    """A per-time curve of any length on `n` points of normalised time (linear interpolation)."""
    curve = np.asarray(curve, dtype=np.float64)
    if len(curve) == 1:
        return np.repeat(curve, n)
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(curve)), curve)
