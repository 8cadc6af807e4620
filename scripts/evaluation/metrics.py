"""Video- and frame-level metrics, confidence intervals and paired AUC tests (docs/design.md §7).

Every function takes numpy arrays (labels 0 = normal, 1 = anomalous; higher score = more anomalous)
and returns plain floats or dicts of them, so the results go straight into JSON. With only one class
among the labels an AUC is undefined: the functions then return `nan` rather than raise, and the
scripts turn that into a one-line error for the user (docs/design.md §9).

- `roc_auc`, `pr_auc` (average precision), `frame_auc`, `frame_ap`: scikit-learn's definitions.
- `trapezoid_ap`, `frame_ap_trapezoid`: the peers' "AP", sklearn's `auc(recall, precision)` over the
  precision-recall curve (linear interpolation; RTFM, MGFN, UR-DMU, PEL4VAD, BN-WVAD and XDVioDet report
  this; only VadCLIP reports `average_precision_score`). The two differ: a result names which it is.
- `per_class_auc`: each anomaly class against all normal videos.
- `bootstrap_ci`: stratified percentile bootstrap; ROC-AUC and AP are computed for all replicates
  at once (1,000 replicates of 290 videos take a few milliseconds).
- `delong_test`, `delong_ci`, `delong_variance`: DeLong, DeLong & Clarke-Pearson (1988), with the
  fast midrank algorithm of Sun & Xu (2014).
- `paired_bootstrap`: ΔAUC of two score sets on the same videos, resampled jointly.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from scripts.core.plots import new_figure, save_figure

Metric = Callable[[np.ndarray, np.ndarray], float]
NAN = float("nan")
# A DeLong variance below this is zero up to rounding (e.g. one score set a monotone map of the
# other); a real ΔAUC variance on even 10 videos is many orders of magnitude larger.
_ZERO_VAR = 1e-14


def _as_arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int 0/1 and scores as float64, both 1-D of the same length (a caller bug otherwise)."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {np.unique(y)[:5].tolist()}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or Inf")
    return y.astype(np.int64), s


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


# ---------------------------------------------------------------------------- point estimates


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (scikit-learn's `roc_auc_score`); nan when only one class is present."""
    y, s = _as_arrays(labels, scores)
    return float(roc_auc_score(y, s)) if _both_classes(y) else NAN


def pr_auc(labels, scores) -> float:
    """Average precision, the step-wise area under the precision-recall curve (scikit-learn's
    `average_precision_score`, no interpolation); nan when only one class is present."""
    y, s = _as_arrays(labels, scores)
    return float(average_precision_score(y, s)) if _both_classes(y) else NAN


def trapezoid_ap(labels, scores) -> float:
    """The peers' AP: the trapezoidal area under the precision-recall curve, `auc(recall, precision)` over
    scikit-learn's `precision_recall_curve`, as their eval scripts compute it; nan with one class only."""
    y, s = _as_arrays(labels, scores)
    if not _both_classes(y):
        return NAN
    precision, recall, _ = precision_recall_curve(y, s)
    return float(auc(recall, precision))


def _concat(arrays) -> np.ndarray:
    if isinstance(arrays, np.ndarray):
        return arrays.reshape(-1)
    return np.concatenate([np.asarray(a).reshape(-1) for a in arrays]) if len(arrays) else np.zeros(0)


def frame_auc(frame_labels, frame_scores) -> float:
    """Frame-level ROC-AUC over all frames of all test videos pooled (the RTFM / MGFN / UR-DMU
    protocol). Each argument is one array over the concatenated frames, or a list of per-video
    arrays that is concatenated here."""
    return roc_auc(_concat(frame_labels), _concat(frame_scores))


def frame_ap(frame_labels, frame_scores) -> float:
    """Frame-level average precision (`average_precision_score`) over all frames pooled; arguments as in
    `frame_auc`."""
    return pr_auc(_concat(frame_labels), _concat(frame_scores))


def frame_ap_trapezoid(frame_labels, frame_scores) -> float:
    """Frame-level AP as the peers compute it (`trapezoid_ap`) over all frames pooled."""
    return trapezoid_ap(_concat(frame_labels), _concat(frame_scores))


def f1_threshold(labels, scores) -> float:
    """The score threshold with the highest F1 (anomalous = positive), as anomalib's F1AdaptiveThreshold:
    over sklearn's precision-recall curve, a video at or above the threshold is called anomalous. With one
    class only, 0.5."""
    y, s = _as_arrays(labels, scores)
    if not _both_classes(y):
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, s)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])  # the last point (recall 0) has no threshold


def per_class_auc(labels, scores, classes: Sequence[str], normal_class: str = "Normal") -> dict[str, float]:
    """ROC-AUC of each anomaly class's videos against all normal videos (label 0).

    Args:
        labels (array [N]): 0 normal, 1 anomalous.
        scores (array [N]): anomaly scores.
        classes (sequence [N] of str): each video's class; `normal_class` marks normal videos.
        normal_class (str): the class name of normal videos, left out of the result.
    Returns:
        {class: ROC-AUC}, classes sorted by name; nan for a class when there is no normal video.
    """
    y, s = _as_arrays(labels, scores)
    cls = np.asarray(classes, dtype=object).reshape(-1)
    if cls.shape != y.shape:
        raise ValueError(f"classes ({cls.size}) and labels ({y.size}) differ in length")
    normal = y == 0
    result = {}
    for name in sorted(set(cls[~normal].tolist()) - {normal_class}):
        keep = normal | ((cls == name) & ~normal)
        result[str(name)] = roc_auc(y[keep], s[keep])
    return result


# ------------------------------------------------------------------- batched metrics (bootstrap)


def _roc_auc_rows(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of `s` [B, N] against labels `y` [N] (Mann-Whitney U with midranks)."""
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    ranks = stats.rankdata(s, axis=1)  # [B, N], ties get their average rank
    u = ranks[:, y == 1].sum(axis=1) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def _pr_auc_rows(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Average precision of each row of `s` [B, N] against `y` [N], scikit-learn's definition:
    every positive contributes 1/n_pos times the precision at the end of its tie group."""
    B, N = s.shape
    order = np.argsort(-s, axis=1, kind="stable")  # [B, N], highest score first
    s_sorted = np.take_along_axis(s, order, axis=1)
    pos_sorted = y[order]  # [B, N]
    tps = np.cumsum(pos_sorted, axis=1)  # true positives when thresholding after position j
    cols = np.arange(N)
    group_end = np.ones((B, N), dtype=bool)  # last position of each run of tied scores
    group_end[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
    end_idx = np.where(group_end, cols, N)
    end_of = np.minimum.accumulate(end_idx[:, ::-1], axis=1)[:, ::-1]  # [B, N] end of j's tie group
    precision_at_end = np.take_along_axis(tps, end_of, axis=1) / (end_of + 1)
    return (pos_sorted * precision_at_end).sum(axis=1) / y.sum()


def _metric_rows(metric: Metric, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """`metric` on every row of `s` [B, N]: vectorised for ROC-AUC and AP, a loop for anything else."""
    batched = {roc_auc: _roc_auc_rows, pr_auc: _pr_auc_rows}.get(metric)
    if batched is not None:
        return batched(y, s)
    return np.array([metric(y, row) for row in s], dtype=np.float64)


def _stratified_indices(y: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """[B, N] resampling indices drawn within each class, and the labels [N] of every replicate.

    Resampling the anomalous and the normal videos separately keeps each class's count, so every
    replicate has both classes and an AUC."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    idx = np.concatenate([pos[rng.integers(0, pos.size, (n_boot, pos.size))],
                          neg[rng.integers(0, neg.size, (n_boot, neg.size))]], axis=1)  # [B, N]
    y_boot = np.concatenate([np.ones(pos.size, np.int64), np.zeros(neg.size, np.int64)])
    return idx, y_boot


# ------------------------------------------------------------------------ confidence intervals


def bootstrap_ci(labels, scores, metric: Metric = roc_auc, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Stratified percentile-bootstrap CI of `metric`: (alpha/2, 1 - alpha/2) quantiles of the
    metric over `n_boot` replicates, each resampling the normal and the anomalous videos separately
    with replacement. Deterministic for a seed; (nan, nan) with only one class."""
    y, s = _as_arrays(labels, scores)
    if not _both_classes(y):
        return NAN, NAN
    idx, y_boot = _stratified_indices(y, n_boot, np.random.default_rng(seed))
    values = _metric_rows(metric, y_boot, s[idx])
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_bootstrap(labels, scores_a, scores_b, n_boot: int = 2000, seed: int = 0,
                     metric: Metric = roc_auc, alpha: float = 0.05) -> dict[str, float]:
    """Paired bootstrap of Δ = metric(a) - metric(b) on the same videos.

    Each replicate resamples videos with replacement (within each class, as in `bootstrap_ci`) and
    scores both sets on the *same* resampled videos, so the correlation of the two is kept.

    p-value (two-sided): twice the share of replicates whose Δ* lies on the other side of zero from
    the observed Δ, ties with zero included (Δ* <= 0 when Δ > 0; Δ* >= 0 when Δ < 0), capped at 1;
    p = 1 when Δ = 0 (e.g. identical score sets). Its resolution is 2 / n_boot.

    Returns:
        {"delta", "ci_low", "ci_high", "p_value"}; all nan with only one class.
    """
    y, a = _as_arrays(labels, scores_a)
    _, b = _as_arrays(labels, scores_b)
    if not _both_classes(y):
        return {"delta": NAN, "ci_low": NAN, "ci_high": NAN, "p_value": NAN}
    delta = metric(y, a) - metric(y, b)
    idx, y_boot = _stratified_indices(y, n_boot, np.random.default_rng(seed))
    deltas = _metric_rows(metric, y_boot, a[idx]) - _metric_rows(metric, y_boot, b[idx])
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    if delta > 0:
        p = min(1.0, 2 * float(np.mean(deltas <= 0)))
    elif delta < 0:
        p = min(1.0, 2 * float(np.mean(deltas >= 0)))
    else:
        p = 1.0
    return {"delta": float(delta), "ci_low": float(low), "ci_high": float(high), "p_value": p}


# ---------------------------------------------------------------------------------- DeLong


def _delong_components(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs [K] and DeLong's structural components of K score sets `s` [K, N] (Sun & Xu 2014).

    V10[k, i] = P(score of positive i > score of a random negative), ties counting 1/2 (the mean of
    ψ over the negatives); V01[k, j] = P(score of a random positive > score of negative j). Midranks
    give them in O(N log N): positive i's rank among all videos minus its rank among the positives
    is the number of negatives below it.
    Returns (aucs [K], v10 [K, m], v01 [K, n]).
    """
    pos, neg = s[:, y == 1], s[:, y == 0]  # [K, m], [K, n]
    m, n = pos.shape[1], neg.shape[1]
    tx = stats.rankdata(pos, axis=1)  # ranks among the positives
    ty = stats.rankdata(neg, axis=1)  # ranks among the negatives
    tz = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # [K, m + n], ranks among all
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    aucs = v10.mean(axis=1)
    return aucs, v10, v01


def _delong_cov(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs [K] and their DeLong covariance matrix [K, K]: S10 / m + S01 / n."""
    aucs, v10, v01 = _delong_components(y, s)
    m, n = v10.shape[1], v01.shape[1]
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def _delong_ready(y: np.ndarray) -> bool:
    # the sample covariances need at least two videos of each class
    return int(y.sum()) >= 2 and y.size - int(y.sum()) >= 2


def delong_variance(labels, scores) -> tuple[float, float]:
    """(ROC-AUC, its DeLong variance); (nan, nan) with fewer than two videos of either class."""
    y, s = _as_arrays(labels, scores)
    if not _delong_ready(y):
        return NAN, NAN
    aucs, cov = _delong_cov(y, s[None, :])
    return float(aucs[0]), float(cov[0, 0])


def delong_ci(labels, scores, alpha: float = 0.05) -> tuple[float, float]:
    """Normal-approximation CI of one ROC-AUC from its DeLong variance, clipped to [0, 1]."""
    auc, var = delong_variance(labels, scores)
    if math.isnan(auc):
        return NAN, NAN
    half = float(stats.norm.ppf(1 - alpha / 2)) * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def delong_test(labels, scores_a, scores_b) -> dict[str, float]:
    """DeLong's paired test of two correlated ROC-AUCs on the same videos.

    z = (AUC_a - AUC_b) / se with se² = Var(a) + Var(b) - 2 Cov(a, b) from the structural
    components; two-sided p = 2 (1 - Φ(|z|)). When se is zero up to rounding (identical score sets,
    or one a monotone map of the other) the AUCs are equal too: delta 0, z 0, p 1.

    Returns:
        {"auc_a", "auc_b", "delta", "se", "z", "p_value"}; all nan with fewer than two videos of
        either class.
    """
    y, a = _as_arrays(labels, scores_a)
    _, b = _as_arrays(labels, scores_b)
    keys = ("auc_a", "auc_b", "delta", "se", "z", "p_value")
    if not _delong_ready(y):
        return dict.fromkeys(keys, NAN)
    aucs, cov = _delong_cov(y, np.stack([a, b]))
    delta = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= _ZERO_VAR:
        if abs(delta) <= 1e-12:
            se, z, p = 0.0, 0.0, 1.0
        else:  # cannot happen for real data (Δ ≠ 0 needs differing components); keep it well defined
            se, z, p = 0.0, math.copysign(math.inf, delta), 0.0
    else:
        se = math.sqrt(var)
        z = delta / se
        p = float(2 * stats.norm.sf(abs(z)))
    return dict(zip(keys, (float(aucs[0]), float(aucs[1]), delta, se, z, p)))


def wilcoxon_signed_rank(differences) -> dict[str, float]:
    """Exact two-sided Wilcoxon signed-rank test of paired differences (e.g. one AUC per (fold, seed)
    pair of two experiments) against a median of 0.

    Zero differences are dropped (Wilcoxon's rule) and tied magnitudes get their mean rank; the null
    distribution of W+ (the rank sum of the positive differences) is enumerated exactly over all 2^n
    sign patterns of those ranks by dynamic programming, so the p-value is exact with ties too.
    p = min(1, 2 min(P(W+ <= w), P(W+ >= w))).

    Returns:
        {"n": pairs used, "n_zero": zeros dropped, "w_plus", "p_value"}; p nan when no pair is left.
    """
    d = np.asarray(differences, dtype=np.float64).ravel()
    nonzero = d[np.abs(d) > 1e-12]
    n = int(nonzero.size)
    if n == 0:
        return {"n": 0, "n_zero": int(d.size), "w_plus": NAN, "p_value": NAN}
    doubled = np.rint(2 * stats.rankdata(np.abs(nonzero))).astype(np.int64)  # mean ranks are multiples of 1/2
    w_plus = int(doubled[nonzero > 0].sum())
    counts = np.zeros(int(doubled.sum()) + 1, dtype=np.float64)  # counts[s]: sign patterns with 2 W+ = s
    counts[0] = 1.0
    for r in doubled:  # r >= 2: each rank is either in W+ or not
        counts[r:] += counts[:-r].copy()
    probs = counts / counts.sum()
    p = min(1.0, 2 * min(probs[: w_plus + 1].sum(), probs[w_plus:].sum()))
    return {"n": n, "n_zero": int(d.size) - n, "w_plus": w_plus / 2, "p_value": float(p)}


# --------------------------------------------------------------------------------- summaries


def summarize(labels, scores, classes: Sequence[str] | None = None, n_boot: int = 1000,
              seed: int = 0) -> dict:
    """The video-level numbers of `test_metrics.json`: ROC-AUC and PR-AUC (average precision) with
    stratified-bootstrap 95% CIs as `video_*` (and under their older names `roc_auc`, `pr_auc`, ...),
    per-class ROC-AUC (when `classes` is given) and the video counts. JSON-ready plain types."""
    y, s = _as_arrays(labels, scores)
    result = {
        "video_roc_auc": roc_auc(y, s),
        "video_pr_auc": pr_auc(y, s),
        "video_roc_auc_ci": list(bootstrap_ci(y, s, roc_auc, n_boot=n_boot, seed=seed)),
        "video_pr_auc_ci": list(bootstrap_ci(y, s, pr_auc, n_boot=n_boot, seed=seed)),
        "ci_method": f"stratified percentile bootstrap, 95%, n_boot={n_boot}, seed={seed}",
    }
    # the names before results named their level; scripts still read them
    result.update({old: result[f"video_{old}"] for old in ("roc_auc", "pr_auc", "roc_auc_ci", "pr_auc_ci")})
    if classes is not None:
        result["per_class_roc_auc"] = per_class_auc(y, s, classes)
    result.update(n_videos=int(y.size), n_normal=int((y == 0).sum()), n_anomalous=int(y.sum()))
    return result


def plot_roc_pr(labels, scores, out_dir: str | os.PathLike, title: str = "") -> list[Path]:
    """Write `roc_curve.png` and `pr_curve.png` into `out_dir` (atomically); returns their paths.

    Uses matplotlib's object API on an Agg canvas, so no pyplot state or display is touched."""
    y, s = _as_arrays(labels, scores)
    if not _both_classes(y):
        raise ValueError("ROC and PR curves need both normal and anomalous videos")
    out_dir = Path(out_dir)
    fpr, tpr, _ = roc_curve(y, s)
    precision, recall, _ = precision_recall_curve(y, s)
    curves = [
        ("roc_curve.png", fpr, tpr, f"video ROC-AUC = {roc_auc(y, s):.4f}", "false positive rate",
         "true positive rate", (0.0, 0.0, 1.0, 1.0), "lower right"),
        ("pr_curve.png", recall, precision, f"video AP = {pr_auc(y, s):.4f}", "recall", "precision",
         (0.0, y.mean(), 1.0, y.mean()), "lower left"),  # chance level of AP = share of anomalies
    ]
    paths = []
    for name, xs, ys, label, xlabel, ylabel, chance, loc in curves:
        fig = new_figure(4.5, 4.5, dpi=120)
        ax = fig.add_subplot()
        ax.plot(xs, ys, drawstyle="steps-post", label=label)
        ax.plot(chance[::2], chance[1::2], linestyle="--", color="grey", linewidth=0.8, label="chance")
        ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02), title=title)
        ax.legend(loc=loc)
        paths.append(save_figure(fig, out_dir / name))
    return paths
