"""RTFM's crop rule as a model call (main.py --crop_mode score_mean; docs/benchmarks.md, "Crops"): for
[T, K, D] feature files (RTFM, MGFN, S3R: 10 crops in one file) every crop is scored on its own and the
scores are averaged over the crops, in training as at test, as RTFM's model does
(`scores.view(bs, ncrops, -1).mean(1)` on sigmoid outputs).

The cache holds the crops as positions, [D, T, K, 1] (as --crop_mode space); `forward` runs the model on
the B * K crops as [D, T, 1, 1] sequences and returns the video's outputs: the probabilities (video and
snippets) averaged over crops and turned back into logits, so the losses see one video; the embedding and
the MotionMap averaged over crops. Each crop's MotionMap is the model's own (no precomputed maps).
"""
from __future__ import annotations

import torch
from torch import Tensor

from scripts.models.config import ModelOutput

SCORE_MEAN = "score_mean"
_EPS = 1e-6  # the averaged probability is clamped into [eps, 1 - eps] before its logit


def forward(model: torch.nn.Module, x: Tensor, motion: Tensor | None, crop_mode: str) -> ModelOutput:
    """The model's outputs for a batch x [B, C, T, H, W]; with score_mean, x is [B, D, T, K, 1]."""
    if crop_mode != SCORE_MEAN:
        return model(x, motion=motion)
    B, D, T, K, _ = x.shape
    crops = x.permute(0, 3, 1, 2, 4).reshape(B * K, D, T, 1, 1)
    out = model(crops)

    def mean_logit(logits: Tensor) -> Tensor:  # [B * K, ...] -> [B, ...]: mean probability, as a logit
        p = torch.sigmoid(logits.float()).view(B, K, *logits.shape[1:]).mean(dim=1)
        return torch.logit(p.clamp(_EPS, 1 - _EPS))

    return ModelOutput(video_logit=mean_logit(out.video_logit), snippet_logits=mean_logit(out.snippet_logits),
                       embedding=out.embedding.view(B, K, -1).mean(dim=1),
                       motion=out.motion.view(B, K, *out.motion.shape[1:]).mean(dim=1))
