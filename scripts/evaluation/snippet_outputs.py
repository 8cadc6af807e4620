"""The scores behind every frame figure, saved by test.py for sequence checkpoints (docs/benchmarks.md,
"Feeding the scores to a peer's evaluation"), and the paired test of two per-frame predictions
(aggregate.py --frame_compare).

    <out_dir>/snippet_scores[_fold{X}].npz   scores: float32, every video's snippet scores concatenated in
                                             test-list order (crops averaged, as scored); lengths: int64,
                                             snippets per video; videos: their names (no object arrays)
    <out_dir>/frame_scores[_fold{X}].npy     float32, each snippet's score repeated over its frames_per_snippet
                                             (16) frames, concatenated: the peers' pred.npy convention, the
                                             length of their gt-*.npy
    <out_dir>/snippet_scores[_fold{X}].csv   video, snippet, start_frame, end_frame, score

The frame comparison: DeLong's test on frame ROC-AUC (frames as the unit, as the peers' AUC pools them)
and a bootstrap that resamples videos, not frames (the frames of one video are not independent): each
replicate draws videos with replacement and weighs every frame by its video's count, so 2,000 replicates
of 1.1 M frames need no copies of the frames (weighted ROC-AUC over score ranks computed once).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from scripts.core.errors import MateError
from scripts.core.fileio import atomic_path, npy_header_fault, save_npy, write_text
from scripts.data.peers import read_frame_labels
from scripts.evaluation.metrics import delong_test, roc_auc


def snippet_arrays(snippets: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, lengths): the per-video snippet scores concatenated (float32) and their counts (int64)."""
    flat = [np.asarray(s, dtype=np.float32).reshape(-1) for s in snippets]
    lengths = np.array([len(s) for s in flat], dtype=np.int64)
    return (np.concatenate(flat) if flat else np.zeros(0, np.float32)), lengths


def write_snippet_scores(out_dir: Path, suffix: str, names: Sequence[str], snippets: Sequence[np.ndarray],
                         frames_per_snippet: int) -> list[Path]:
    """The three files of the module docstring; returns their paths."""
    scores, lengths = snippet_arrays(snippets)
    npz = out_dir / f"snippet_scores{suffix}.npz"
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, scores=scores, lengths=lengths, videos=np.array(list(names), dtype=str))
    frames = out_dir / f"frame_scores{suffix}.npy"
    save_npy(frames, np.repeat(scores, frames_per_snippet).astype(np.float32))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["video", "snippet", "start_frame", "end_frame", "score"])
    start = 0
    for name, n in zip(names, lengths.tolist()):
        for i in range(n):
            writer.writerow([name, i, i * frames_per_snippet, (i + 1) * frames_per_snippet - 1,
                             f"{float(scores[start + i]):.9g}"])
        start += n
    table = write_text(out_dir / f"snippet_scores{suffix}.csv", buf.getvalue())
    return [npz, frames, table]


def read_prediction(path: Path, frames_per_snippet: int = 16) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-frame scores from a .npy (a peer's pred.npy, this repo's frame_scores) or this repo's snippet
    .npz (expanded over frames); with the .npz also the frames per video."""
    lengths = None
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                scores, lengths = z["scores"], z["lengths"] * frames_per_snippet
            scores = np.repeat(scores.astype(np.float64), frames_per_snippet)
        else:
            fault = npy_header_fault(path)
            if fault is not None:
                raise MateError(f"{path}: {fault}")
            scores = np.load(path, allow_pickle=False).astype(np.float64).reshape(-1)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MateError(f"{path}: cannot read a prediction ({' '.join(str(exc).split())})") from None
    if not np.isfinite(scores).all():
        raise MateError(f"{path}: the prediction holds NaN or Inf (first at frame "
                        f"{np.flatnonzero(~np.isfinite(scores))[0]:,})")
    return scores, lengths


def _weighted_auc(groups: np.ndarray, positive: np.ndarray, weights: np.ndarray, n_groups: int) -> float:
    """ROC-AUC with frame weights: `groups` indexes each frame's score among the sorted distinct scores."""
    pos = np.bincount(groups[positive], weights[positive], n_groups)
    neg = np.bincount(groups[~positive], weights[~positive], n_groups)
    below = np.cumsum(neg) - neg
    total = pos.sum() * neg.sum()
    return float((pos * (below + 0.5 * neg)).sum() / total) if total > 0 else float("nan")


def video_bootstrap(gt: np.ndarray, a: np.ndarray, b: np.ndarray, lengths: np.ndarray, n_boot: int,
                    seed: int) -> dict:
    """Δ frame ROC-AUC (a - b) with videos resampled: percentile 95% CI and a two-sided p as
    metrics.paired_bootstrap defines it."""
    rng = np.random.default_rng(seed)
    positive = gt > 0.5
    _, ga = np.unique(a, return_inverse=True)
    _, gb = np.unique(b, return_inverse=True)
    na, nb = int(ga.max()) + 1, int(gb.max()) + 1
    deltas = np.empty(n_boot)
    for r in range(n_boot):
        counts = np.bincount(rng.integers(0, len(lengths), len(lengths)), minlength=len(lengths))
        w = np.repeat(counts.astype(np.float64), lengths)
        deltas[r] = _weighted_auc(ga, positive, w, na) - _weighted_auc(gb, positive, w, nb)
    delta = roc_auc(gt, a) - roc_auc(gt, b)
    low, high = np.nanquantile(deltas, [0.025, 0.975])
    p = 1.0 if delta == 0 else min(1.0, 2 * float(np.mean(deltas <= 0 if delta > 0 else deltas >= 0)))
    return {"delta": float(delta), "ci_low": float(low), "ci_high": float(high), "p_value": p, "n_boot": n_boot}


def frame_compare(pred_a: Path, pred_b: Path, gt_path: Path, *, videos: Path | None = None, n_boot: int = 1000,
                  seed: int = 0, frames_per_snippet: int = 16) -> dict:
    """DeLong and the video bootstrap of two per-frame predictions on one GT array (module docstring)."""
    a, len_a = read_prediction(pred_a, frames_per_snippet)
    b, len_b = read_prediction(pred_b, frames_per_snippet)
    fault = npy_header_fault(gt_path) if gt_path.is_file() else "not found"
    if fault is not None:
        raise MateError(f"{gt_path}: {fault} (--gt takes the peers' concatenated frame GT .npy)")
    gt = read_frame_labels(gt_path).astype(np.float64)  # 0/1 only: NaN or 0.7 is refused, naming the frame
    if not (len(a) == len(b) == len(gt)):
        raise MateError(f"--frame_compare: {pred_a} has {len(a)} frames, {pred_b} {len(b)}, {gt_path} {len(gt)}; "
                        "the three must cover the same frames")
    lengths = len_a if len_a is not None else len_b
    if videos is not None:
        lengths = read_prediction(videos, frames_per_snippet)[1]
    if lengths is None:
        raise MateError("--frame_compare: the bootstrap resamples videos, so it needs their frame counts: give one "
                        "prediction as test.py's snippet_scores*.npz, or --videos snippet_scores*.npz")
    if int(lengths.sum()) != len(gt):
        raise MateError(f"--frame_compare: the videos' frames add up to {int(lengths.sum())}, the arrays hold {len(gt)}")
    if n_boot < 1:
        raise MateError(f"--n_boot: must be at least 1, got {n_boot}")
    return {"frames": int(len(gt)), "videos": int(len(lengths)), "delong": delong_test(gt, a, b),
            "video_bootstrap": video_bootstrap(gt, a, b, lengths, n_boot, seed)}


def format_frame_compare(result: dict, a: Path, b: Path) -> str:
    d, boot = result["delong"], result["video_bootstrap"]
    return "\n".join([
        f"frame ROC-AUC over {result['frames']} frames of {result['videos']} videos: {a} {d['auc_a']:.4f}, "
        f"{b} {d['auc_b']:.4f}, delta {d['delta']:+.4f}",
        f"DeLong (frames as the unit): z {d['z']:.3f}, p {d['p_value']:.3g}",
        f"bootstrap over videos ({boot['n_boot']} replicates): delta 95% CI [{boot['ci_low']:+.4f}, "
        f"{boot['ci_high']:+.4f}], p {boot['p_value']:.3g}"])
