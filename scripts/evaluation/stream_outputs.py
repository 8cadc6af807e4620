"""What test.py --stream writes as it goes (scripts/evaluation/stream.py): one JSON line per event on
standard output or --events, scores.csv rewritten atomically after every point, timeline.png every
PLOT_EVERY_S seconds, and all of them complete at the end."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import numpy as np

from scripts.core.fileio import write_text
from scripts.evaluation.single_video import VideoScorer, VideoScores

PLOT_EVERY_S = 10.0


def peak_memory_gib() -> float:
    """This process's peak resident memory (ru_maxrss, KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StreamOutputs:
    """The JSON lines, scores.csv and timeline.png of a stream, written as it goes."""

    def __init__(self, scorer: VideoScorer, out_dir: Path, events: IO[str], threshold: float, said: str,
                 plots: bool = True):
        self.scorer, self.out_dir, self.events = scorer, out_dir, events
        self.threshold, self.said, self.plots = threshold, said, plots
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.scores: list[float] = []
        self.alert_since: float | None = None
        self.plotted = time.monotonic()
        self.compute_s = 0.0  # seconds spent in the backbone and the detector

    def emit(self, **fields) -> None:
        self.events.write(json.dumps({"event": fields.pop("event"), **fields, "wall_time": _now()}) + "\n")
        self.events.flush()

    def point(self, start: float, end: float, score: float, *, latency: float, behind: float, dropped: int) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.scores.append(score)
        self.emit(event="score", start_s=round(start, 3), end_s=round(end, 3), score=round(score, 6),
                  threshold=self.threshold, latency_s=round(latency, 3), behind_s=round(max(0.0, behind), 3),
                  dropped_frames=dropped)
        if score >= self.threshold and self.alert_since is None:
            self.alert_since = start
            self.emit(event="alert", state="start", at_s=round(start, 3), score=round(score, 6),
                      threshold=self.threshold)
        elif score < self.threshold and self.alert_since is not None:
            self.alert_since = None
            self.emit(event="alert", state="end", at_s=round(start, 3), score=round(score, 6),
                      threshold=self.threshold)
        self.write_csv(fps=None)
        if self.plots and time.monotonic() - self.plotted >= PLOT_EVERY_S:
            self.write_plot()

    def curve(self, fps: float | None) -> VideoScores:
        fps = fps or 30.0
        ends = np.array(self.ends)
        return VideoScores(video_score=max(self.scores, default=float("nan")), starts=np.array(self.starts),
                           ends=ends, scores=np.array(self.scores), fps=fps,
                           num_frames=int(round((ends.max() if len(ends) else 0) * fps)),
                           kind=self.scorer.describe_points() + " (live)", settings=self.scorer.said,
                           random_weights=self.scorer.random_weights)

    def write_csv(self, fps: float | None) -> Path:
        from scripts.evaluation.video_outputs import scores_csv

        return write_text(self.out_dir / "scores.csv", scores_csv(self.curve(fps), self.scorer.checkpoint, self.said))

    def write_plot(self, fps: float | None = None) -> Path | None:
        from scripts.evaluation.video_outputs import plot_timeline

        self.plotted = time.monotonic()
        if not self.scores:
            return None
        return plot_timeline(self.curve(fps), self.out_dir / "timeline.png", self.threshold,
                             f"stream: peak {max(self.scores):.3f} over {len(self.scores)} points")

    def finish(self, reason: str, reader) -> list[Path]:
        if self.alert_since is not None:
            self.emit(event="alert", state="end", at_s=round(self.ends[-1], 3), score=round(self.scores[-1], 6),
                      threshold=self.threshold, reason="stream ended")
        written = [self.write_csv(reader.fps)]
        if self.plots:
            plot = self.write_plot(reader.fps)
            written += [plot] if plot else []
        self.emit(event="end", reason=reason, points=len(self.scores), frames=reader.frames,
                  dropped_frames=reader.dropped_frames, stream_s=round(reader.newest, 3),
                  compute_s=round(self.compute_s, 3), peak_memory_gib=round(peak_memory_gib(), 3))
        return written
