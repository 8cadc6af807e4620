"""The model's inputs, parts 1 and 2 of MATE (docs/design.md §3.1-2): the input projection with the
difference features (DifferenceFeatures) and the MotionMap as modules of scripts/model.py's Mate; their
arithmetic is scripts/models/motion.py and, fused, scripts/models/difference_projection.py.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from scripts.models.config import INPUT_NORMS
from scripts.models.difference_projection import fused_difference_projection
from scripts.models.fast_paths import plain
from scripts.models.motion import difference_features, motion_norms, normalise_per_video


# --- 1. the difference features --------------------------------------------------------------------

class DifferenceFeatures(nn.Module):
    """Input projection: |x_t - x_{t-1}| (zero at t = 0) joins x (2C channels), normalisation, Linear.

    Normalisation `norm`:
    - "token" (published): LayerNorm over the 2C channels of every token. It rescales every token to
      unit variance, so a still background token weighs as much as a strongly firing one; on the
      synthetic data it costs ROC-AUC and makes training seed-sensitive (docs/model.md).
    - "video" (default): the same statistics taken over the whole video (all channels and tokens,
      GroupNorm with one group), then the same per-channel affine. Invariant to the features' global
      scale like LayerNorm, but keeps the contrast between tokens that marks an event.
    Both have the same parameters (a per-channel weight and bias of size 2C).

    With differences=False (the motion-free ablation) only x is projected: the same normalisation over
    its C channels, Linear(C, D); the model then sees no difference of consecutive steps here.

    Args:
        in_channels (int): C.
        dim (int): D, the hidden size.
        norm (str): "video" or "token".
        differences (bool): project [x, |x_t - x_{t-1}|] (2C channels); False: x alone (C channels).
        fused (bool): with differences, compute normalisation + Linear without materialising [x, d]
            (same numbers, several times faster on CPU; scripts/models/difference_projection.py); the plain
            path is used anyway when x requires a gradient, and inside fast_paths.plain_paths().
    """

    def __init__(self, *, in_channels: int, dim: int, norm: str = "video", differences: bool = True,
                 fused: bool = True):
        super().__init__()
        assert norm in INPUT_NORMS, f"input norm must be one of {INPUT_NORMS}, got {norm!r}"
        channels = 2 * in_channels if differences else in_channels
        self.norm = nn.LayerNorm(channels) if norm == "token" else nn.GroupNorm(1, channels)
        self.proj = nn.Linear(channels, dim)
        self.differences, self.fused = differences, fused

    def forward(self, x: Tensor) -> Tensor:
        """x [B, C, T, H, W] -> h [B, T, H, W, D]."""
        if not self.differences:
            return self._plain(x.to(self.proj.weight.dtype))  # [B, T, H, W, D]
        if not self.fused or plain() or (torch.is_grad_enabled() and x.requires_grad):
            return self._plain(torch.cat([x, difference_features(x)], dim=1))  # u [B, 2C, T, H, W]
        return fused_difference_projection(x, self.norm, self.proj)  # [B, T, H, W, D]

    def _plain(self, u: Tensor) -> Tensor:
        """u [B, C', T, H, W] -> Linear(Norm(u)) [B, T, H, W, D]."""
        if isinstance(self.norm, nn.GroupNorm):
            return self.proj(self.norm(u).permute(0, 2, 3, 4, 1))  # [B, T, H, W, D]
        return self.proj(self.norm(u.permute(0, 2, 3, 4, 1)))  # [B, T, H, W, D]

    def extra_repr(self) -> str:
        return f"differences={self.differences}"


# --- 2. the MotionMap ------------------------------------------------------------------------------

class MotionMap(nn.Module):
    """M [B, T, H, W] in [0, 1]: per token, the norm of its difference to the mean of the preceding
    `window` steps, over the video's maximum (scripts/models/motion.py). No parameters."""

    def __init__(self, *, window: int = 2, eps: float = 1e-6):
        super().__init__()
        self.window, self.eps = window, eps

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():  # float32 (float64 for a float64 model), whatever the features' dtype
            M = normalise_per_video(motion_norms(x, self.window), self.eps)
            return M.to(torch.promote_types(x.dtype, torch.float32))

    def extra_repr(self) -> str:
        return f"window={self.window}"


def frame_motion(M: Tensor | None) -> Tensor | None:
    """M [B, T, H, W] -> the mean motion of every frame [B, T] (None stays None)."""
    return None if M is None else M.mean(dim=(2, 3))
