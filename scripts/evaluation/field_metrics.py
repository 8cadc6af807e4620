"""The figures the field reads beside ROC-AUC (docs/benchmarks.md, "Which key is which paper's figure"):
the false alarm rate on normal videos, and the trapezoidal twins of the step-wise AP keys.

False alarm rate (PEL4VAD, UR-DMU and others report it on UCF-Crime): the share of the normal test
videos' frames scored at or above a threshold. Sequence checkpoints with frame ground truth give it at
frame level; map checkpoints have one score per video, so theirs is the share of normal test videos at
or above the threshold, named video level. Both at the alarm threshold (test.py --threshold, else the
validation-selected one the checkpoint stores) and at 0.5, each named.

Every AP / PR key test_metrics.json holds is defined in AP_DEFINITIONS, written into the file as
`ap_definitions`: the existing keys keep their definitions (aggregate.py and docs/design.md §7 read
them); the `*_trapezoid` keys are the peers' trapezoidal `auc(recall, precision)`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from scripts.evaluation.metrics import trapezoid_ap

STEPWISE = "average_precision_score, step-wise (scikit-learn; no interpolation)"
TRAPEZOID = ("auc(recall, precision) over precision_recall_curve, trapezoidal (the peers' eval scripts: RTFM, "
             "MGFN, UR-DMU, PEL4VAD, BN-WVAD, XDVioDet; upstream MATE's test.py PR-AUC)")
AP_DEFINITIONS = {
    "video_pr_auc": "video level, " + STEPWISE,
    "pr_auc": "the older name of video_pr_auc",
    "video_pr_auc_trapezoid": "video level, " + TRAPEZOID,
    "frame.frame_ap": "frame level, all frames pooled, " + TRAPEZOID,
    "frame.frame_ap_sklearn": "frame level, all frames pooled, " + STEPWISE,
    "frame.pr_auc": "the older name of frame.frame_ap_sklearn",
    "frame.per_class_ap": "frame level per anomaly class (its videos' frames and every normal video's), " + STEPWISE,
    "frame.per_class_ap_trapezoid": "as frame.per_class_ap, " + TRAPEZOID,
}
FIXED_THRESHOLD = 0.5


def rate_at(values: np.ndarray, threshold: float | None) -> float | None:
    """The share of `values` at or above `threshold` (None without a threshold or without values)."""
    if threshold is None or values.size == 0:
        return None
    return float((values >= threshold).mean())


def false_alarm_rate(scores: np.ndarray, *, level: str, threshold: float | None, threshold_from: str) -> dict:
    """The false alarm rate of the normal test videos' `scores` (all their frames concatenated, or one
    score per video) at `threshold` and at 0.5."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    return {"level": level, "n": int(scores.size), "threshold": threshold, "threshold_from": threshold_from,
            "at_threshold": rate_at(scores, threshold), f"at_{FIXED_THRESHOLD:g}": rate_at(scores, FIXED_THRESHOLD)}


def normal_frame_scores(frame_labels: Sequence[np.ndarray], frame_scores: Sequence[np.ndarray],
                        video_labels: Sequence[int]) -> np.ndarray:
    """The frame scores of the normal videos (video label 0), concatenated."""
    picked = [np.asarray(s).reshape(-1) for s, y in zip(frame_scores, video_labels) if int(y) == 0]
    return np.concatenate(picked) if picked else np.zeros(0)


def video_pr_auc_trapezoid(labels, scores) -> float:
    return trapezoid_ap(labels, scores)


def alarm_threshold(given: float | None, stored: float | None) -> tuple[float | None, str]:
    """The alarm threshold and where it comes from: --threshold, else the checkpoint's validation one."""
    if given is not None:
        return float(given), "--threshold"
    if stored is not None:
        return float(stored), "validation, stored in the checkpoint"
    return None, "none: the checkpoint stores no validation threshold"


def format_far(far: dict) -> str:
    """One line of the test.py report."""
    unit = "frames of normal videos" if far["level"] == "frame" else "normal videos"
    at, fixed = far["at_threshold"], far[f"at_{FIXED_THRESHOLD:g}"]
    first = f"n/a at the alarm threshold ({far['threshold_from']})" if at is None else \
        f"{at:.4f} at {far['threshold']:.4g} ({far['threshold_from']})"
    second = "n/a" if fixed is None else f"{fixed:.4f}"
    return f"{'false alarm rate':<22}{first}; {second} at {FIXED_THRESHOLD:g} ({far['level']} level, {far['n']} {unit})"
