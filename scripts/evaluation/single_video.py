"""Scoring a new video end to end (test.py --video / --video_root): X3D features through the extractor's
functions, then the detector, as a curve over time and one score for the whole video.

A sequence checkpoint ([T, D] features) scores the video's snippet sequence: one score per snippet from
the snippet head (snippet i stands for [i * stride, (i + 1) * stride) / 30 s, scripts/extraction/clips.py), the video
score from the video head. A map checkpoint ([C, T, H, W] maps, max-pooled over a whole video's clips)
was trained on maps of whole videos, so the curve comes from sliding windows: the map of K consecutive
clips (max-pooled as in extraction), scored by the model, sliding by one clip; K defaults to about 10 s
(`window_clips`). The video score is the model on the map of all clips, as its training features were
made. Memory stays bounded: clips stream through, only the last K clip maps are kept.

The threshold that marks intervals comes from validation (scripts/training.val_threshold, stored in the
checkpoint's metrics); a checkpoint without one (the published ones, older runs) uses 0.5 and says so.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scripts.model import model_from_checkpoint
from scripts.models import crop_scoring
from scripts.models.checkpoint import load_checkpoint
from scripts.dataset import to_model_layout
from scripts.core.errors import MateError
from scripts.extraction.batching import choose_batching
from scripts.extraction.extraction import ExtractSettings, extract_video
from scripts.data.feature_settings import check_video_weights, video_settings
from scripts.extraction.x3d import load_backbone

DEFAULT_THRESHOLD = 0.5  # for checkpoints without a validation-selected one
SLIDING_SECONDS = 10.0  # a map checkpoint's sliding window, about this long by default


@dataclass
class VideoScores:
    """A scored video: the curve (one score per time window [start_s, end_s)) and the whole video's score."""

    video_score: float
    starts: np.ndarray  # [n] seconds
    ends: np.ndarray  # [n] seconds
    scores: np.ndarray  # [n]
    fps: float
    num_frames: int
    kind: str  # what one point of the curve is, for the CSV header and the plot
    settings: str = ""  # which extraction settings were used and where they came from
    random_weights: bool = False

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def frames(self) -> list[tuple[int, int]]:
        """(first, last) frame of each window: the frames whose time f / fps lies in [start_s, end_s)."""
        first = np.ceil(self.starts * self.fps - 1e-9).astype(int)
        last = np.minimum(np.ceil(self.ends * self.fps - 1e-9).astype(int) - 1, self.num_frames - 1)
        return list(zip(first.tolist(), np.maximum(last, first).tolist()))

    def at(self, time: float) -> float | None:
        """The score shown at `time` s: the highest of the windows that hold it (None outside all)."""
        inside = (self.starts <= time) & (time < self.ends)
        return float(self.scores[inside].max()) if inside.any() else None


def top_intervals(scores: VideoScores, threshold: float, k: int = 5) -> list[tuple[float, float, float]]:
    """Runs of consecutive windows scoring >= threshold as (start_s, end_s, peak), best first."""
    runs, start = [], None
    values = list(scores.scores) + [-np.inf]
    for i, s in enumerate(values):
        if s >= threshold and start is None:
            start = i
        elif s < threshold and start is not None:
            runs.append((float(scores.starts[start]), float(scores.ends[i - 1]), float(max(values[start:i]))))
            start = None
    return sorted(runs, key=lambda r: -r[2])[:k]


def stored_threshold(ckpt: dict) -> tuple[float, str]:
    """The checkpoint's validation-selected threshold and a line saying where it comes from."""
    value = (ckpt.get("metrics") or {}).get("val_threshold")
    if value is None:
        return DEFAULT_THRESHOLD, (f"threshold {DEFAULT_THRESHOLD:g}: the checkpoint stores no validation-selected "
                                   "one (published or older checkpoint); --threshold sets it")
    return float(value), f"threshold {float(value):.4g}: selected on validation (F1-maximising), from the checkpoint"


@dataclass
class VideoScorer:
    """A checkpoint and its X3D backbone, loaded once, scoring any number of videos."""

    checkpoint: Path
    backbone: str | None = None
    backbone_checkpoint: Path | None = None
    pretrained: bool = False
    random_weights: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    crops: int | None = None
    decoder: str = "cv2"
    clip_batch_size: int | None = None  # None: per device (scripts/extraction/batching.py)
    clip_workers: int | None = None
    live: bool = False  # test.py --stream: batching for latency (scripts/extraction/batching.py)
    force_settings: bool = False
    window_clips: int | None = None

    def __post_init__(self):
        self.ckpt = load_checkpoint(self.checkpoint)
        model, _ = model_from_checkpoint(self.ckpt, source=self.checkpoint)
        self.model = model.to(self.device).eval()
        feature = self.feature = self.ckpt["feature"]
        C = feature["shape"][0]
        self.sequence = bool(feature["sequence"])
        made, self.said = video_settings(feature, backbone=self.backbone, crops=self.crops, force=self.force_settings)
        if self.sequence and C not in (192, 2048):
            raise MateError(f"{self.checkpoint}: trained on {C}-d sequence features; X3D gives 2048 (head) or "
                            "192 (stem)")
        net = load_backbone(made["backbone"], checkpoint=self.backbone_checkpoint, pretrained=self.pretrained,
                            random_weights=self.random_weights, layout="sequence" if self.sequence else "map",
                            sequence_feature=made.get("sequence_feature") or ("head" if C == 2048 else "stem"))
        check_video_weights(made.get("weights"), net.weights, random_weights=self.random_weights,
                            force=self.force_settings)
        self.net = net.to(self.device)
        self.made = made
        self.batching = choose_batching(self.device, batch_size=self.clip_batch_size, workers=self.clip_workers,
                                        batch_flag="--clip_batch_size", live=self.live)
        if self.device.type == "cpu":
            torch.set_num_threads(self.batching.threads_per_worker)  # each worker's share of the threads
        # maps: the published clip rule; sequences: every frame in a snippet (feature_extractor.py's defaults)
        self.extract = ExtractSettings.for_backbone(
            made["backbone"], num_frames=made.get("frames_per_clip"), sampling_rate=made.get("sampling_rate"),
            stride=made.get("stride"), side_size=made.get("side_size"), crop_size=made.get("crop_size"),
            clip_sampling=made.get("clip_sampling") or ("strided" if self.sequence else "uniform"),
            crops=made.get("crops") or 1, decoder=self.decoder, batch_size=self.batching.batch_size,
            clip_workers=self.batching.workers)
        spec = self.extract.spec
        if self.window_clips is not None and self.window_clips < 1:
            raise MateError(f"--window_clips: must be at least 1, got {self.window_clips}")
        self.K = self.window_clips or max(1, round((SLIDING_SECONDS - spec.window_s) / spec.stride_s) + 1)
        self.threshold, self.threshold_said = stored_threshold(self.ckpt)

    def describe_points(self) -> str:
        spec = self.extract.spec
        if self.sequence:
            return f"one point per snippet ({spec.stride_s:.3g} s)"
        length = (self.K - 1) * spec.stride_s + spec.window_s
        return (f"one point per sliding window: the max-pooled map of {self.K} consecutive clips "
                f"({length:.3g} s), sliding by one clip ({spec.stride_s:.3g} s)")

    def clip_maps(self, y: torch.Tensor, source) -> torch.Tensor:
        """Per-clip maps [B, C, T, h, w] (crops max-pooled) of the backbone's output [B, K, C, T, h, w],
        checked against the checkpoint's map shape."""
        C, _, H, W = self.feature["shape"]
        maps = y.amax(dim=1).float()
        if tuple(maps.shape[1:2] + maps.shape[3:]) != (C, H, W):
            raise MateError(f"{source}: --backbone {self.made['backbone']} gives maps {list(maps.shape[1:])}, "
                            f"the checkpoint {self.checkpoint} was trained on {self.feature['shape']}")
        return maps

    def window_score(self, maps) -> float:
        """The detector's score of the max-pooled map of some clips (a sliding window), in float32."""
        with torch.inference_mode():
            pooled = torch.stack(list(maps)).amax(dim=0)[None]  # [1, C, T, h, w]
            return float(torch.sigmoid(self.model(pooled.float()).video_logit)[0])

    def snippet_scores(self, features: np.ndarray) -> np.ndarray:
        """Sequence checkpoints: one score per snippet of features [n, D] (or [n, crops, D])."""
        with torch.inference_mode():
            x = torch.from_numpy(to_model_layout(features, crop_mode=self.feature.get("crop_mode", "mean")))[None]
            out = crop_scoring.forward(self.model, x.to(self.device), None, self.feature.get("crop_mode", "mean"))
            return torch.sigmoid(out.snippet_logits[0]).float().cpu().numpy()

    def score(self, video: Path, progress: bool = True) -> VideoScores:
        spec = self.extract.spec
        recent: deque[torch.Tensor] = deque(maxlen=self.K)  # the last K clip maps [C, T, h, w]
        points: list[tuple[int, float]] = []  # (first clip, score) of each sliding window
        clips_seen = 0

        def on_clips(y: torch.Tensor) -> None:  # y [B, K, C, T, h, w]: each clip's map
            nonlocal clips_seen
            for m in self.clip_maps(y, video):
                recent.append(m)
                clips_seen += 1
                if len(recent) == self.K:
                    points.append((clips_seen - self.K, self.window_score(recent)))

        with torch.inference_mode():
            features, sidecar = extract_video(video, self.net, self.extract, device=self.device, progress=progress,
                                              on_clips=None if self.sequence else on_clips)
            if not self.sequence and not points:  # fewer clips than K: one window over all of them
                points.append((0, self.window_score(recent)))
            x = torch.from_numpy(to_model_layout(features, crop_mode=self.feature.get("crop_mode", "mean")))[None]
            out = crop_scoring.forward(self.model, x.to(self.device), None,  # x [1, C, T, H, W]
                                       self.feature.get("crop_mode", "mean"))
        fps = float(sidecar["fps"] or 30.0)  # a container without a frame rate: seconds assume 30 fps
        duration = sidecar["num_frames"] / fps
        if self.sequence:
            scores = torch.sigmoid(out.snippet_logits[0]).float().cpu().numpy()  # = snippet_scores(features)
            starts = np.arange(len(scores)) * spec.stride_s
            ends = np.minimum(starts + spec.stride_s, duration)
        else:
            clip_times = spec.clip_windows(clips_seen)
            scores = np.array([s for _, s in points])
            starts = np.array([float(clip_times[i][0]) for i, _ in points])
            ends = np.array([float(clip_times[min(i + self.K, clips_seen) - 1][1]) for i, _ in points])
            ends = np.minimum(ends, duration)  # a video shorter than a clip's window ends where it ends
        return VideoScores(video_score=float(torch.sigmoid(out.video_logit[0])), starts=starts, ends=ends,
                           scores=scores, fps=fps, num_frames=int(sidecar["num_frames"]), kind=self.describe_points(),
                           settings=self.said, random_weights=self.random_weights)


def score_video(video: Path, checkpoint: Path, *, progress: bool = True, **options) -> VideoScores:
    """One video with a checkpoint (VideoScorer's options: backbone, backbone_checkpoint, pretrained, ...)."""
    return VideoScorer(checkpoint, **options).score(video, progress=progress)
