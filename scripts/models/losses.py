"""MATE's losses (docs/design.md §4): BCE on the video logit, batch-hard triplet on the embedding, and the
optional snippet terms (top-k MIL, sparsity, smoothness) for sequence features.

The model returns logits; the sigmoid is applied exactly once, here (inside BCE-with-logits, or on
snippet logits for the sparsity and smoothness terms that act on probabilities).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scripts.core.errors import MateError
from scripts.models.config import topk_mean
from scripts.models.fields import LOSS, check_fields, option


@dataclass
class LossConfig:
    """Weights of the loss terms; a weight of 0 switches its term off (it is then not computed). Each field is
    declared once (scripts/models/fields.py): scripts/option.py's loss flags and their help come from here."""

    lambda_triplet: float = option(0.1, "weight of the batch-hard triplet loss on L2-normalised embeddings",
                                   minimum=0.0, group=LOSS)
    triplet_margin: float = option(0.5, "triplet margin; unit-vector distances lie in [0, 2]", minimum=0.0, group=LOSS)
    lambda_topk: float = option(0.0, "weight of top-k MIL BCE on snippet logits; for sequence features, where "
                                     "snippet scores matter", minimum=0.0, group=LOSS)
    # the model's rule (scripts.models.config.topk_count); 0.125 gives the model's own T // 8
    topk_ratio: float = option(0.125, "top-k MIL uses k = max(1, floor(ratio x T)) snippets, the model's own rule "
                                      "for its video logit (0.125: T // 8)", group=LOSS)
    lambda_sparsity: float = option(0.0, "weight of the sparsity term (mean snippet probability of anomalous "
                                         "videos)", minimum=0.0, group=LOSS)
    lambda_smooth: float = option(0.0, "weight of the smoothness term (squared change of consecutive snippet "
                                       "probabilities)", minimum=0.0, group=LOSS)

    def __post_init__(self):
        check_fields(self, "loss config")
        if not 0.0 < self.topk_ratio <= 1.0:
            raise MateError(f"loss config: topk_ratio (--topk_ratio) must be in (0, 1], got {self.topk_ratio!r}")


def batch_hard_triplet(embedding: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Batch-hard triplet loss: per anchor, its farthest same-label and nearest other-label video."""
    z = F.normalize(embedding, dim=1)  # [B, E]
    dist = torch.cdist(z, z)  # [B, B]
    same = labels[:, None] == labels[None, :]  # [B, B]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    hardest_pos = dist.masked_fill(~positive, float("-inf")).amax(dim=1)  # [B]
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)  # [B]
    valid = positive.any(dim=1) & (~same).any(dim=1)  # anchors with both a positive and a negative
    # the mean over the valid anchors (0 when there is none), without a host sync: no `if`, no boolean index
    per_anchor = torch.where(valid, F.relu(hardest_pos - hardest_neg + margin), 0.0)
    return per_anchor.sum() / valid.sum().clamp(min=1)


def topk_mil_loss(snippet_logits: Tensor, labels: Tensor, ratio: float) -> Tensor:
    """BCE of the video label on the mean of the top-k snippet logits (the model's top-k rule)."""
    return F.binary_cross_entropy_with_logits(topk_mean(snippet_logits, ratio), labels)


def sparsity_loss(snippet_logits: Tensor, labels: Tensor) -> Tensor:
    """Anomalies are rare within an anomalous video: push its mean snippet probability down."""
    anomalous = (labels > 0.5).to(snippet_logits.dtype)  # [B]
    # the mean probability over the anomalous videos' snippets (0 without one), without a host sync
    per_video = torch.sigmoid(snippet_logits).mean(dim=1)  # [B]
    return (per_video * anomalous).sum() / anomalous.sum().clamp(min=1)


def smoothness_loss(snippet_logits: Tensor) -> Tensor:
    if snippet_logits.shape[1] < 2:
        return snippet_logits.sum() * 0.0
    p = torch.sigmoid(snippet_logits)
    return (p[:, 1:] - p[:, :-1]).pow(2).mean()


class MateLoss(nn.Module):
    """`L = BCE(video logit, y) + λ_tri·triplet(z) [+ λ_topk·MIL + λ_sparse·sparsity + λ_smooth·smooth]`.

    Returns the total and a dict of each computed term's value (for metrics.csv).
    """

    def __init__(self, cfg: LossConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, video_logit: Tensor, snippet_logits: Tensor, embedding: Tensor,
                labels: Tensor) -> tuple[Tensor, dict[str, float]]:
        terms = self.terms(video_logit, snippet_logits, embedding, labels)
        total = torch.stack(list(terms.values())).sum()
        return total, {k: float(v.detach()) for k, v in terms.items()}

    def terms(self, video_logit: Tensor, snippet_logits: Tensor, embedding: Tensor,
              labels: Tensor) -> dict[str, Tensor]:
        """Each computed term, weighted, as a tensor on the inputs' device (forward sums them)."""
        cfg = self.cfg
        terms: dict[str, Tensor] = {"bce": F.binary_cross_entropy_with_logits(video_logit, labels)}
        if cfg.lambda_triplet > 0:
            terms["triplet"] = cfg.lambda_triplet * batch_hard_triplet(embedding, labels, cfg.triplet_margin)
        if cfg.lambda_topk > 0:
            terms["topk"] = cfg.lambda_topk * topk_mil_loss(snippet_logits, labels, cfg.topk_ratio)
        if cfg.lambda_sparsity > 0:
            terms["sparsity"] = cfg.lambda_sparsity * sparsity_loss(snippet_logits, labels)
        if cfg.lambda_smooth > 0:
            terms["smooth"] = cfg.lambda_smooth * smoothness_loss(snippet_logits)
        return terms
