"""MATE and the MIL baseline (DESIGN §3): one module per paper component, built from a MateConfig.

    from scripts.model import config_for_variant, build_model
    cfg = config_for_variant("fast")               # or "base", "mil"; keyword overrides allowed
    model = build_model(cfg)
    out = model(x)                                 # x [B, C, T, H, W] -> ModelOutput (logits)

The checkpoint stores `dataclasses.asdict(cfg)`; `build_model(MateConfig(**d))` rebuilds the model.
The model returns logits; the sigmoid is applied once, in the loss or at scoring.

Data flow of Mate (tokens are the T*H*W positions, hidden size `dim`):
    x [B, C, T, H, W] --DifferenceFeatures--> h [B, T, H, W, D]     (|x_t - x_{t-1}| joins x, LN, Linear)
    x --MotionMap--> M [B, T, H, W] in [0, 1]                      (None with use_motion_map=False)
    h --Block x num_blocks: TemporalConditionedConv, MotionConditionedAttention, FeedForward--> h
    h --MotionAwareTemporalPooling--> z [B, Q*D] (video embedding), p [B, T, D] (pooled time steps)
    z --video_head--> video logit [B];   p --snippet_head--> snippet logits [B, T]
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scripts.errors import MateError
from scripts.motion import (difference_features, motion_norms, normalise_per_video,
                            video_chunks)

VARIANTS = ("fast", "base", "mil")
TCC_MODES = ("plain", "multiscale", "gating", "multiscale_gating")


@dataclass
class MateConfig:
    """Hyper-parameters of the model; plain values only, so a checkpoint can store `asdict(cfg)`.

    The defaults are the `fast` variant. Ablation switches set a component to None (skipped).
    """
    variant: str = "fast"  # fast | base | mil
    in_channels: int = 192  # C of the features (192 for X3D-L maps, e.g. 2048 for I3D sequences)
    dim: int = 8  # hidden size D of every token
    num_blocks: int = 1
    num_heads: int = 1  # attention heads (dim must be divisible)
    motion_window: int = 2  # MotionMap: preceding steps averaged as the reference
    use_motion_map: bool = True  # False: every part runs unconditioned (--no_motion_map)
    use_attention: bool = True  # --no_attention
    use_tcc: bool = True  # --no_tcc
    tcc_mode: str = "multiscale_gating"  # plain | multiscale | gating | multiscale_gating
    tcc_bottleneck: int = 8  # channels of the TCC's spatial convolution
    use_motion_pooling: bool = True  # False: plain mean/max pooling (--no_motion_pooling)
    num_queries: int = 8  # Q learned queries of the temporal pooling; z has Q*dim entries
    spatial_window: int = 0  # 0: spatial attention over the whole frame; w > 0: within w x w windows
    ff_mult: int = 4  # feed-forward expansion
    head_hidden: int = 32  # hidden units of the video head (0: a single linear layer)
    snippet_hidden: int = 16  # hidden units of the snippet head (0: a single linear layer)
    dropout: float = 0.0
    mil_hidden: int = 512  # MIL baseline: FC sizes (Sultani et al.: 512, 32)
    mil_embed: int = 32

    def __post_init__(self):
        def fault(key: str, expected: str) -> MateError:
            return MateError(f"model config: {key} must be {expected}, got {getattr(self, key)!r}")

        if self.variant not in VARIANTS:
            raise fault("variant", "one of " + ", ".join(VARIANTS))
        if self.tcc_mode not in TCC_MODES:
            raise fault("tcc_mode", "one of " + ", ".join(TCC_MODES))
        for key in ("in_channels", "dim", "num_blocks", "num_heads", "motion_window", "tcc_bottleneck",
                    "num_queries", "ff_mult", "mil_hidden", "mil_embed"):
            if isinstance(getattr(self, key), bool) or not isinstance(getattr(self, key), int) \
                    or getattr(self, key) < 1:
                raise fault(key, "a positive integer")
        for key in ("spatial_window", "head_hidden", "snippet_hidden"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 0:
                raise fault(key, "an integer >= 0")
        if self.dim % self.num_heads:
            raise fault("num_heads", f"a divisor of dim = {self.dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise fault("dropout", "in [0, 1)")


# Each variant's departures from the MateConfig defaults; sizes tuned to the published parameter
# counts on 192-channel input (about 8.5k and 40k).
VARIANT_DEFAULTS: dict[str, dict] = {
    "fast": {},
    "base": dict(dim=32, num_heads=4, tcc_bottleneck=16, head_hidden=0, snippet_hidden=16),
    "mil": dict(use_motion_map=False, use_attention=False, use_tcc=False, use_motion_pooling=False,
                dropout=0.6),
}


def config_for_variant(variant: str, **overrides) -> MateConfig:
    """The variant's config with `overrides` applied; an override of None keeps the variant's value
    (so CLI flags defaulting to None can be passed straight through)."""
    if variant not in VARIANTS:
        raise MateError(f"model config: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    fields = {f.name for f in dataclasses.fields(MateConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise MateError(f"model config: unknown key(s) {', '.join(unknown)}")
    values = dict(VARIANT_DEFAULTS[variant], variant=variant)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return MateConfig(**values)


@dataclass
class ModelOutput:
    video_logit: Tensor  # [B]
    snippet_logits: Tensor  # [B, T]
    embedding: Tensor  # [B, E] the video embedding z (triplet loss, UMAP)
    motion: Tensor  # [B, T, H, W] the MotionMap used (zeros when the model uses none)


# --- 1. difference features and the input projection ----------------------------------------------

class _DifferenceProjection(torch.autograd.Function):
    """a = W_x x_n + W_d |x_t - x_{t-1}|_n per token n, and the sums over the 2C channels of [x, d]
    and [x, d]^2 that LayerNorm needs, computed a few videos at a time.

    LayerNorm followed by Linear is linear in the normalised input, so
        Linear(LN(u)) = rstd * (W' u - mean * W' 1) + b',  W' = W diag(gamma),  b' = W beta + b,
    and only W' u needs the 2C-channel tokens. Streaming it avoids materialising the concatenated
    [x, d] (2x the batch), its normalised copy and its gradient; the backward pass recomputes d per
    chunk. Gradients flow to the weights only (x is data); see DifferenceFeatures for the x-grad path.
    """

    @staticmethod
    def forward(ctx, x: Tensor, w_x: Tensor, w_d: Tensor):
        B, C, T, N = x.shape
        D = w_x.shape[0]
        ones = w_x.new_ones(1, C)
        wx1 = torch.cat([w_x, ones]).detach()  # [D+1, C]: the extra row sums the channels
        wd1 = torch.cat([w_d, ones]).detach()
        proj = w_x.new_empty(B, D, T, N)
        stats = w_x.new_empty(B, 2, T, N)  # sum and sum of squares over the 2C channels of [x, d]
        for sl in video_chunks(B, C * T * N):
            xc = x[sl].to(w_x.dtype)  # [b, C, T, N]
            b = xc.shape[0]
            ax = torch.matmul(wx1, xc.view(b, C, T * N)).view(b, D + 1, T, N)
            stats[sl, 1] = (xc * xc).sum(dim=1)  # [b, T, N]
            if T > 1:
                s = xc[:, :, 1:] - xc[:, :, :-1]  # [b, C, T-1, N]
                stats[sl, 1, 1:] += (s * s).sum(dim=1)
                s.abs_()  # d = |s|
                ax[:, :, 1:] += torch.matmul(wd1, s.view(b, C, (T - 1) * N)).view(b, D + 1, T - 1, N)
            proj[sl] = ax[:, :D]
            stats[sl, 0] = ax[:, D]
        ctx.save_for_backward(x)
        ctx.weight_dtype = w_x.dtype
        ctx.mark_non_differentiable(stats)
        return proj, stats

    @staticmethod
    def backward(ctx, grad_proj: Tensor, grad_stats: Tensor):
        (x,) = ctx.saved_tensors
        B, C, T, N = x.shape
        D = grad_proj.shape[1]
        g = grad_proj.contiguous().view(B, D, T * N)
        grad_x_w = grad_proj.new_zeros(D, C)
        grad_d_w = grad_proj.new_zeros(D, C)
        for sl in video_chunks(B, C * T * N):
            xc = x[sl].to(ctx.weight_dtype).view(-1, C, T * N)  # [b, C, T*N]
            grad_x_w += torch.matmul(g[sl], xc.transpose(1, 2)).sum(dim=0)  # [D, C]
            if T > 1:
                xc = xc.view(-1, C, T, N)
                d = (xc[:, :, 1:] - xc[:, :, :-1]).abs_().view(-1, C, (T - 1) * N)
                grad_d_w += torch.matmul(g[sl, :, N:], d.transpose(1, 2)).sum(dim=0)
        return None, grad_x_w, grad_d_w
