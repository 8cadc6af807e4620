"""Scoring a new video end to end (test.py --video): X3D features through feature_extractor's
functions, then the detector, per snippet and for the whole video.

A sequence checkpoint ([T, D] features) scores the video's snippet sequence: per-snippet scores from
the snippet head, the video score from the video head. A map checkpoint ([C, T, H, W] maps pooled
over clips) scores every clip's own map for the curve over time and the clip-pooled map for the video
score, exactly as its training features were made. Memory stays bounded: clips stream through.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scripts.checkpoint import load_checkpoint, model_from_checkpoint
from scripts.dataset import to_model_layout
from scripts.errors import MateError
from scripts.extraction import ExtractSettings, extract_video
from scripts.fileio import write_text
from scripts.plots import new_figure, save_figure
from scripts.feature_settings import check_video_weights, video_settings
from scripts.x3d import load_backbone


@dataclass
class VideoScores:
    video_score: float
    snippet_scores: np.ndarray  # [n] one per clip / snippet
    stride: int  # frames per snippet
    num_frames: int
    fps: float
    settings: str = ""  # which extraction settings were used and where they came from

    def spans(self) -> list[tuple[int, int]]:
        """(first, last) frame of each snippet: [i * stride, (i + 1) * stride), cut at the video's end."""
        n = len(self.snippet_scores)
        return [(i * self.stride, min((i + 1) * self.stride, self.num_frames) - 1) for i in range(n)]


def score_video(video: Path, checkpoint: Path, *, backbone: str | None, backbone_checkpoint: Path | None,
                pretrained: bool, random_weights: bool, device: torch.device, crops: int | None = None,
                decoder: str = "cv2", batch_size: int = 8, progress: bool = True,
                force_settings: bool = False) -> VideoScores:
    """Extract `video` as the checkpoint's training features were extracted (feature_settings.py) and
    score it snippet by snippet; `backbone`/`crops` None take the checkpoint's settings."""
    ckpt = load_checkpoint(checkpoint)
    model, _ = model_from_checkpoint(ckpt, source=checkpoint)
    model.to(device)
    feature = ckpt["feature"]
    C, _, H, W = feature["shape"]
    sequence = feature["sequence"]
    made, said = video_settings(feature, backbone=backbone, crops=crops, force=force_settings)
    if sequence and C not in (192, 2048):
        raise MateError(f"{checkpoint}: trained on {C}-d sequence features; X3D gives 2048 (head) or 192 (stem)")
    net = load_backbone(made["backbone"], checkpoint=backbone_checkpoint, pretrained=pretrained,
                        random_weights=random_weights, layout="sequence" if sequence else "map",
                        sequence_feature=made.get("sequence_feature") or ("head" if C == 2048 else "stem"))
    check_video_weights(made.get("weights"), net.weights, random_weights=random_weights, force=force_settings)
    net = net.to(device)
    # maps: the published clip rule; sequences: every frame in a snippet (feature_extractor.py's defaults)
    settings = ExtractSettings.for_backbone(
        made["backbone"], num_frames=made.get("frames_per_clip"), sampling_rate=made.get("sampling_rate"),
        stride=made.get("stride"), side_size=made.get("side_size"), crop_size=made.get("crop_size"),
        clip_sampling=made.get("clip_sampling") or ("strided" if sequence else "uniform"),
        crops=made.get("crops") or 1, decoder=decoder, batch_size=batch_size)
    clip_scores: list[torch.Tensor] = []

    def score_clips(y: torch.Tensor) -> None:  # y [B, K, 192, T, h, w]: each clip's map, crops max-pooled
        maps = y.amax(dim=1).float()
        if tuple(maps.shape[1:2] + maps.shape[3:]) != (C, H, W):
            raise MateError(f"{video}: --backbone {made['backbone']} gives maps {list(maps.shape[1:])}, the checkpoint "
                            f"{checkpoint} was trained on {feature['shape']}")
        clip_scores.append(torch.sigmoid(model(maps).video_logit).cpu())

    with torch.inference_mode():
        features, sidecar = extract_video(video, net, settings, device=device, progress=progress,
                                          on_clips=None if sequence else score_clips)
        x = torch.from_numpy(to_model_layout(features, crop_mode=feature.get("crop_mode", "mean")))[None]
        out = model(x.to(device))  # x [1, C, T, H, W]
    snippets = torch.sigmoid(out.snippet_logits[0]).cpu() if sequence else torch.cat(clip_scores)
    return VideoScores(video_score=float(torch.sigmoid(out.video_logit[0])), snippet_scores=snippets.numpy(),
                       stride=int(sidecar["stride"]), num_frames=int(sidecar["num_frames"]),
                       fps=float(sidecar["fps"] or 0.0), settings=said)


def top_intervals(scores: VideoScores, threshold: float, k: int = 5) -> list[tuple[int, int, float]]:
    """Runs of consecutive snippets scoring >= threshold as (first frame, last frame, peak), best first."""
    runs, start = [], None
    spans = scores.spans()
    for i, s in enumerate(list(scores.snippet_scores) + [-1.0]):
        if s >= threshold and start is None:
            start = i
        elif s < threshold and start is not None:
            runs.append((spans[start][0], spans[i - 1][1], float(scores.snippet_scores[start:i].max())))
            start = None
    return sorted(runs, key=lambda r: -r[2])[:k]


def write_video_outputs(scores: VideoScores, video: Path, out_dir: Path, threshold: float) -> list[Path]:
    fps = scores.fps or 30.0  # a container without a frame rate: seconds assume 30 fps
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["start_frame", "end_frame", "seconds", "score"])
    for (first, last), s in zip(scores.spans(), scores.snippet_scores):
        writer.writerow([first, last, f"{first / fps:.3f}", f"{float(s):.6f}"])
    paths = [write_text(out_dir / f"{video.stem}_scores.csv", buf.getvalue())]
    fig = new_figure(8, 3.2)
    ax = fig.add_subplot()
    t = [first / fps for first, _ in scores.spans()] + [scores.num_frames / fps]
    ax.stairs(scores.snippet_scores, t, label="snippet score")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8, label=f"threshold {threshold:g}")
    ax.set(xlabel="seconds", ylabel="anomaly score", ylim=(0, 1.02),
           title=f"{video.name}: video score {scores.video_score:.3f}")
    ax.legend(loc="upper right", fontsize=8)
    paths.append(save_figure(fig, out_dir / f"{video.stem}_scores.png"))
    return paths
