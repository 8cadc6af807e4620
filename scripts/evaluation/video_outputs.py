"""What test.py --video / --video_root writes per scored video, and per folder (README, "Score your own video").

    <out_dir>/<video's path relative to the root, without extension>/
        scores.csv     start_s, end_s, start_frame, end_frame, score: one row per point of the curve, under a
                       `#` line saying what made it (checkpoint, what a point is, threshold, random weights)
        timeline.png   the score over time in seconds, the threshold, the annotated seconds shaded (--gt)
        overlay.mp4    the video at its own frame rate and size, a score strip below it and a red frame while
                       the score is at or above the threshold; decoded and written frame by frame
    <out_dir>/summary.csv   (folder mode) one row per video, ranked by peak score
    <out_dir>/failures.csv  (folder mode) video, error: the files that could not be scored
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from scripts.core.errors import MateError
from scripts.core.fileio import atomic_path, write_text
from scripts.core.plots import new_figure, save_figure
from scripts.evaluation.single_video import VideoScores, top_intervals
from scripts.extraction.video import VideoReader

RANDOM_NOTE = "RANDOM X3D WEIGHTS: meaningless scores (smoke test)"
STRIP = 48  # pixels of the score strip below the overlay's frame


def header(scores: VideoScores, checkpoint: Path, threshold_said: str) -> str:
    parts = [f"checkpoint {checkpoint}", scores.kind, threshold_said, f"video score {scores.video_score:.4f}"]
    if scores.random_weights:
        parts.insert(0, RANDOM_NOTE)
    return "# " + "; ".join(parts)


def scores_csv(scores: VideoScores, checkpoint: Path, threshold_said: str) -> str:
    buf = io.StringIO()
    buf.write(header(scores, checkpoint, threshold_said) + "\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["start_s", "end_s", "start_frame", "end_frame", "score"])
    for (first, last), start, end, s in zip(scores.frames(), scores.starts, scores.ends, scores.scores):
        writer.writerow([f"{start:.3f}", f"{end:.3f}", first, last, f"{float(s):.9g}"])
    return buf.getvalue()


def gt_seconds(annotation, fps: float) -> list[tuple[float, float]]:
    """An annotation's inclusive frame intervals as [start, end) seconds."""
    return [(start / fps, (end + 1) / fps) for start, end in annotation.intervals]


def plot_timeline(scores: VideoScores, path: Path, threshold: float, title: str,
                  annotated: Sequence[tuple[float, float]] = ()) -> Path:
    return save_figure(timeline_figure(scores, threshold, title, annotated), path)


def timeline_figure(scores: VideoScores, threshold: float, title: str,
                    annotated: Sequence[tuple[float, float]] = ()):
    """The score over time in seconds, the threshold, the annotated seconds shaded."""
    fig = new_figure(9, 3.2)
    ax = fig.add_subplot()
    for i, (a, b) in enumerate(annotated):
        ax.axvspan(a, b, color="tab:red", alpha=0.15, label="annotated" if i == 0 else None)
    middle = (scores.starts + scores.ends) / 2
    if "snippet" in scores.kind:
        ax.stairs(scores.scores, np.append(scores.starts, scores.ends[-1]), label="snippet score", linewidth=1.2)
    else:
        ax.plot(middle, scores.scores, marker=".", linewidth=1.2, label="window score (at its centre)")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8, label=f"threshold {threshold:.3g}")
    ax.set(xlabel="seconds", ylabel="anomaly score", ylim=(0, 1.02), xlim=(0, max(scores.duration, 1e-3)))
    ax.set_title(title, fontsize=9)
    ax.text(0.01, 0.97, scores.kind, transform=ax.transAxes, fontsize=7, va="top", color="dimgrey")
    ax.legend(loc="upper right", fontsize=7)
    return fig


def write_overlay(video: Path, scores: VideoScores, path: Path, threshold: float, decoder: str = "cv2",
                  progress: bool = True) -> Path:
    """The video, frame by frame, with a score strip (the curve so far, a cursor) and a red border while the
    score at the frame's time is at or above `threshold`. Written through a temp file."""
    import cv2
    from tqdm import tqdm

    with VideoReader(video, decoder) as reader, atomic_path(path) as tmp:
        writer = None
        bar = tqdm(total=reader.declared_frames, desc=f"overlay {video.name}", unit="frame", disable=not progress,
                   leave=False)
        try:
            for frame, time in reader.timed_frames():
                if writer is None:
                    H, W = frame.shape[:2]
                    strip = score_strip(scores, W, threshold)
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), scores.fps, (W, H))
                    if not writer.isOpened():
                        raise MateError(f"{path}: OpenCV cannot write an MP4 (mp4v) video here")
                writer.write(draw_frame(frame, strip, scores, float(time), threshold))
                bar.update(1)
        finally:
            bar.close()
            if writer is not None:
                writer.release()
    return path


def score_strip(scores: VideoScores, width: int, threshold: float) -> np.ndarray:
    """The whole curve drawn once into a [STRIP, width, 3] image; each frame adds its cursor."""
    import cv2

    strip = np.full((STRIP, width, 3), 32, np.uint8)
    y = lambda s: int(round((STRIP - 4) * (1 - s))) + 2  # noqa: E731
    cv2.line(strip, (0, y(threshold)), (width - 1, y(threshold)), (128, 128, 128), 1)
    x = lambda t: int(round(t / max(scores.duration, 1e-6) * (width - 1)))  # noqa: E731
    for start, end, s in zip(scores.starts, scores.ends, scores.scores):  # each point: its span, at its score
        colour = (60, 60, 230) if s >= threshold else (230, 200, 80)
        cv2.line(strip, (x(start), y(float(s))), (max(x(start), x(end) - 1), y(float(s))), colour, 2)
    return strip


def draw_frame(frame: np.ndarray, strip: np.ndarray, scores: VideoScores, time: float,
               threshold: float) -> np.ndarray:
    """The frame with the strip pasted over its bottom rows (the size stays the input's)."""
    import cv2

    out = frame.copy()
    H, W = out.shape[:2]
    h = min(STRIP, H // 3)
    band = cv2.resize(strip, (W, h)) if h != STRIP else strip.copy()
    cx = int(round(time / max(scores.duration, 1e-6) * (W - 1)))
    cv2.line(band, (cx, 0), (cx, h - 1), (255, 255, 255), 1)
    out[H - h:] = band
    score = scores.at(time)
    text = "no window" if score is None else f"{score:.2f}"
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    if score is not None and score >= threshold:
        cv2.rectangle(out, (0, 0), (W - 1, H - 1), (0, 0, 255), max(2, min(H, W) // 60))
    return out


SUMMARY_FIELDS = ("video", "peak_score", "peak_start_s", "peak_end_s", "video_score", "seconds_above_threshold",
                  "threshold", "points", "out_dir", "note")


def summary_row(name: str, scores: VideoScores, threshold: float, out: Path) -> dict:
    i = int(np.argmax(scores.scores))
    above = sum(b - a for a, b, _ in top_intervals(scores, threshold, k=len(scores.scores)))
    return {"video": name, "peak_score": f"{float(scores.scores[i]):.6f}", "peak_start_s": f"{scores.starts[i]:.3f}",
            "peak_end_s": f"{scores.ends[i]:.3f}", "video_score": f"{scores.video_score:.6f}",
            "seconds_above_threshold": f"{above:.3f}", "threshold": f"{threshold:.6g}",
            "points": len(scores.scores), "out_dir": str(out), "note": RANDOM_NOTE if scores.random_weights else ""}


def write_summary(path: Path, rows: list[dict]) -> Path:
    """summary.csv, ranked by peak score (highest first)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: -float(r["peak_score"])))
    return write_text(path, buf.getvalue())
