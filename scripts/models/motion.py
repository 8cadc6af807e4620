"""The MotionMap and difference features: explicit motion from feature differences (docs/design.md §3.1-2).

    from scripts.models.motion import motion_map
    M = motion_map(x)            # x [B, C, T, H, W] -> M [B, T, H, W] in [0, 1]

Both functions need no model, so the diagnostics (test1.py, motion_map_analyze.py) call them on raw
features. They are pure functions of the input (no parameters, nothing to learn).

Speed: a batch of UCF-Crime maps is tens of MB, and on CPU every fresh tensor of that size costs a
page-faulting allocation that is slower than the arithmetic. `motion_map` therefore works through
the batch a few videos at a time, so its intermediates are small, reused and cache-resident.
"""
from __future__ import annotations

import torch
from torch import Tensor

CHUNK_ELEMENTS = 1 << 18  # ~1 MB of float32 per chunk of videos: fits the L2 cache


def video_chunks(B: int, per_video: int) -> list[slice]:
    """Slices of the batch dimension holding about CHUNK_ELEMENTS elements each (>= 1 video)."""
    step = max(1, CHUNK_ELEMENTS // max(1, per_video))
    return [slice(i, min(i + step, B)) for i in range(0, B, step)]


def preceding_mean_residual(x: Tensor, window: int) -> Tensor:
    """x [B, C, T, ...] -> r [B, C, T-1, ...]: x_t minus the mean of its `window` preceding steps.

    r[:, :, t-1] belongs to time step t = 1..T-1; for t < window only the t steps that exist are
    averaged. Built from shifted slices, so it needs one tensor of x's size and no cumsum copy.
    """
    assert window >= 1, f"motion window must be >= 1, got {window}"
    T = x.shape[2]
    acc = x[:, :, :-1].clone()  # [B, C, T-1, ...]: step t-1 for every t >= 1
    for k in range(2, min(window, T - 1) + 1):
        acc[:, :, k - 1:] += x[:, :, :-k]  # step t-k, present for t >= k
    count = torch.arange(1, T, device=x.device, dtype=x.dtype).clamp_(max=window)  # [T-1]
    acc /= count.view(1, 1, T - 1, *([1] * (x.dim() - 3)))
    return torch.sub(x[:, :, 1:], acc, out=acc)


def motion_norms(x: Tensor, window: int) -> Tensor:
    """x [B, C, T, H, W] -> [B, T, H, W]: unnormalised residual norms (0 at t = 0), in float32
    (float64 for float64 input)."""
    B, C, T, H, W = x.shape
    dtype = torch.promote_types(x.dtype, torch.float32)  # float16 would overflow in the squares
    out = torch.zeros(B, T, H, W, device=x.device, dtype=dtype)
    if T == 1:
        return out
    for sl in video_chunks(B, C * T * H * W):
        xc = x[sl].to(dtype)
        r = preceding_mean_residual(xc, window)  # [b, C, T-1, H, W]
        out[sl, 1:] = r.mul_(r).sum(dim=1).sqrt_()  # [b, T-1, H, W]
    return out


def normalise_per_video(n: Tensor, eps: float) -> Tensor:
    """n [B, T, H, W] >= 0 -> n / (the video's maximum + eps), in [0, 1]."""
    peak = n.flatten(1).amax(dim=1).view(-1, 1, 1, 1)  # [B, 1, 1, 1]
    return n / (peak + eps)


def motion_map(x: Tensor, window: int = 2, eps: float = 1e-6) -> Tensor:
    """The MotionMap of a batch of feature maps.

    Args:
        x (Tensor): features [B, C, T, H, W] (sequences as [B, D, T, 1, 1]); any float dtype.
        window (int): how many preceding time steps form the reference mean (fewer at the start).
        eps (float): keeps a motionless video (all differences 0) at M = 0 instead of 0 / 0.

    Returns:
        M [B, T, H, W] in [0, 1] (float32; float64 for float64 input): per token, the L2 norm over
        channels of its difference to the mean of the preceding `window` steps, divided by the
        video's maximum; M = 0 at t = 0.
    """
    assert x.dim() == 5, f"motion_map expects x [B, C, T, H, W], got shape {list(x.shape)}"
    with torch.no_grad():  # a function of the data alone: nothing upstream to differentiate
        return normalise_per_video(motion_norms(x, window), eps)


def difference_features(x: Tensor) -> Tensor:
    """x [B, C, T, H, W] -> |x_t - x_{t-1}| of the same shape (zero at t = 0)."""
    assert x.dim() == 5, f"difference_features expects x [B, C, T, H, W], got shape {list(x.shape)}"
    return torch.cat([torch.zeros_like(x[:, :, :1]), (x[:, :, 1:] - x[:, :, :-1]).abs()], dim=2)
