"""Scoring a loaded dataset with a model: video probabilities, snippet probabilities, embeddings."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from scripts.core.errors import MateError
from scripts.models import crop_scoring
from scripts.models.crop_scoring import SCORE_MEAN

from scripts.dataset import FeatureDataset
from scripts.model import feature_motion_map


@dataclass
class Scores:
    """Per video, in dataset order: probability of anomaly, snippet probabilities, embedding."""

    video: np.ndarray  # [N]
    snippets: list[np.ndarray]  # N arrays [T_i]
    embeddings: np.ndarray  # [N, E]
    motion: list[np.ndarray]  # N arrays [T_i]: the MotionMap averaged over space


def _batches(ds: FeatureDataset, batch_size: int):
    if ds.is_stacked:
        for start in range(0, len(ds), batch_size):
            yield list(range(start, min(start + batch_size, len(ds))))
    else:  # sequences of different lengths: one video at a time, never padded
        for i in range(len(ds)):
            yield [i]


@torch.no_grad()
def score_dataset(model: torch.nn.Module, ds: FeatureDataset, *, device: torch.device | str = "cpu",
                  batch_size: int = 32, motion_off: bool = False, progress: bool = False) -> Scores:
    """Score every video of `ds` (eval mode); `motion_off` feeds an all-zero MotionMap."""
    model.eval()
    device = torch.device(device)
    motion_key = None if motion_off else feature_motion_map(model)
    video, snippets, embeddings, motion = [], [], [], []
    total = len(ds) if not ds.is_stacked else -(-len(ds) // batch_size)
    for idx in tqdm(_batches(ds, batch_size), total=total, desc="scoring", unit="batch",
                    disable=not progress, leave=False):
        x, _ = ds.batch(idx)
        if device.type == "cuda":
            x = x.pin_memory()  # page-locked, so the non_blocking copy overlaps the GPU's work
        x = x.to(device, non_blocking=True)  # [B, C, T, H, W]
        override = None  # the model's own MotionMap, or the same numbers computed once per video
        crop_mode = getattr(ds, "crop_mode", "mean")
        if motion_off:
            if crop_mode == SCORE_MEAN:
                raise MateError("a MotionMap switched off is not available with --crop_mode score_mean")
            B, C, T, H, W = x.shape
            override = x.new_zeros(B, T, H, W)
        elif motion_key and crop_mode != SCORE_MEAN:
            override = ds.motion_maps(idx, *motion_key)
        out = crop_scoring.forward(model, x, override, crop_mode)  # score_mean: each crop scored, averaged
        check_finite_scores(out.video_logit, out.snippet_logits, x, idx, ds)
        video.append(torch.sigmoid(out.video_logit).float().cpu())
        snippets.extend(torch.sigmoid(out.snippet_logits).float().cpu().numpy())
        embeddings.append(out.embedding.float().cpu())
        motion.extend(out.motion.float().mean(dim=(2, 3)).cpu().numpy())
    return Scores(video=torch.cat(video).numpy(), snippets=snippets,
                  embeddings=torch.cat(embeddings).numpy(), motion=motion)


def check_finite_scores(video_logit: torch.Tensor, snippet_logits: torch.Tensor, x: torch.Tensor, idx, ds) -> None:
    """A NaN score (features so large that the model overflows) is one line naming the video's file, not a
    traceback from a metric later."""
    bad = (torch.isnan(video_logit.detach()) | torch.isnan(snippet_logits.detach()).flatten(1).any(1)).cpu()  # [B]
    # (+-Inf logits are scores 1 and 0, still ordered)
    if bool(bad.any()):
        j = int(bad.nonzero()[0, 0])
        entries = getattr(ds, "entries", None)
        name = entries[idx[j]].path if entries is not None else f"video {idx[j]}"
        peak = float(x[j].detach().abs().max())
        raise MateError(f"{name}: the model's score is NaN (its largest |feature| is {peak:.3g}: values this "
                        "extreme overflow the model; check the features)")


@dataclass
class CropAveraged:
    """A per-crop dataset seen as its videos (scripts/data/crops.py): what the metrics read of a dataset
    (entries, labels, is_sequence), one per video."""

    entries: list
    labels: torch.Tensor
    is_sequence: bool


def average_crops(ds, scores: Scores, *, source: str = "manifest"):
    """(dataset, scores) per video: a per-crop dataset's scores averaged over each video's crops (video score,
    snippet scores, embeddings, motion), as the peers test; a dataset of whole videos comes back as it is."""
    from scripts.data.crops import crop_groups, per_video

    groups = crop_groups(ds.entries, source=source)
    if groups is None:
        return ds, scores
    mean = lambda arrays: np.mean(np.stack(arrays), axis=0)  # noqa: E731
    videos = per_video(ds.entries, groups)
    averaged = Scores(video=np.array([scores.video[idx].mean() for _, idx in groups]),
                      snippets=[mean([scores.snippets[i] for i in idx]) for _, idx in groups],
                      embeddings=np.stack([scores.embeddings[idx].mean(axis=0) for _, idx in groups]),
                      motion=[mean([scores.motion[i] for i in idx]) for _, idx in groups])
    return CropAveraged(videos, torch.tensor([e.label for e in videos]), ds.is_sequence), averaged
