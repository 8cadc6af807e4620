"""The fast path of MATE's input projection (scripts/model.py, DifferenceFeatures): the same numbers as

    u = torch.cat([x, |x_t - x_{t-1}|], dim=1)       # [B, 2C, T, H, W], the difference 0 at t = 0
    h = Linear(Norm(u))                               # [B, T, H, W, D]

without materialising u. Only speed lives here; the model's meaning is in model.py, and
tests/test_model.py::test_fused_projection_equals_concat_norm_linear holds the two paths equal.

Why it pays: Norm followed by Linear is linear in the normalised input, so with u = [x, d]
    Linear(Norm(u)) = rstd * (W' u - mean * W' 1) + b',  W' = W diag(gamma),  b' = W beta + b,
(mean, rstd per token for LayerNorm, per video for the video norm, GroupNorm with one group), and
only W' u and the sums of u and u^2 need the 2C-channel tokens. Streaming those a few videos at a
time avoids the concatenated [x, d] (2x the batch), its normalised copy and its gradient; several
times faster on CPU.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from scripts.models.motion import video_chunks


class _DifferenceProjection(torch.autograd.Function):
    """a = W_x x_n + W_d |x_t - x_{t-1}|_n per token n, and the sums over the 2C channels of [x, d]
    and [x, d]^2 that the normalisation needs, computed a few videos at a time. With `per_video` (the
    video norm) the sum of squares is one number per video, a dot product of the video with itself
    (no squared copy, no per-token reduction: 2.5x faster than the per-token sums it replaces).

    The backward pass recomputes d per chunk. Gradients flow to the weights only (x is data); with an
    x that needs a gradient DifferenceFeatures takes its plain path instead.
    """

    @staticmethod
    def forward(ctx, x: Tensor, w_x: Tensor, w_d: Tensor, per_video: bool = False):
        B, C, T, N = x.shape
        D = w_x.shape[0]
        ones = w_x.new_ones(1, C)
        wx1 = torch.cat([w_x, ones]).detach()  # [D+1, C]: the extra row sums the channels
        wd1 = torch.cat([w_d, ones]).detach()
        # token-major [B, T*N, D], the layout the blocks read: no later LayerNorm copies it to contiguous
        proj = w_x.new_empty(B, T * N, D)
        stats = w_x.new_empty(B, 2, T * N)  # sum and sum of squares over the 2C channels of [x, d]
        squares = w_x.new_zeros(B, 2, dtype=torch.float64)  # per_video: the video's sum of squares of x, d
        for sl in video_chunks(B, C * T * N):
            xc = x[sl].to(w_x.dtype)  # [b, C, T, N]
            b = xc.shape[0]
            ax = torch.matmul(wx1, xc.view(b, C, T * N))  # [b, D+1, T*N]
            if per_video:
                flat = xc.reshape(b, -1)
                squares[sl, 0] = torch.einsum("bi,bi->b", flat, flat).double()
            else:
                stats[sl, 1] = (xc * xc).sum(dim=1).view(b, T * N)
            if T > 1:
                s = xc[:, :, 1:] - xc[:, :, :-1]  # [b, C, T-1, N]
                if per_video:
                    flat = s.reshape(b, -1)
                    squares[sl, 1] = torch.einsum("bi,bi->b", flat, flat).double()
                else:
                    stats[sl, 1, N:] += (s * s).sum(dim=1).view(b, -1)
                s.abs_()  # d = |s|
                ax[:, :, N:] += torch.matmul(wd1, s.view(b, C, (T - 1) * N))
            proj[sl] = ax[:, :D].transpose(1, 2)  # a few kB per video, transposed here once
            stats[sl, 0] = ax[:, D]
        ctx.save_for_backward(x)
        ctx.weight_dtype = w_x.dtype
        ctx.mark_non_differentiable(stats, squares)
        return proj, stats, squares

    @staticmethod
    def backward(ctx, grad_proj: Tensor, grad_stats: Tensor, grad_squares: Tensor):
        (x,) = ctx.saved_tensors
        B, C, T, N = x.shape
        g = grad_proj.contiguous()  # [B, T*N, D]
        grad_x_w = grad_proj.new_zeros(g.shape[2], C)
        grad_d_w = grad_proj.new_zeros(g.shape[2], C)
        for sl in video_chunks(B, C * T * N):
            xc = x[sl].to(ctx.weight_dtype).view(-1, C, T * N)  # [b, C, T*N]
            gc = g[sl].transpose(1, 2).contiguous()  # [b, D, T*N]
            grad_x_w += torch.matmul(gc, xc.transpose(1, 2)).sum(dim=0)  # [D, C]
            if T > 1:
                xc = xc.view(-1, C, T, N)
                d = (xc[:, :, 1:] - xc[:, :, :-1]).abs_().view(-1, C, (T - 1) * N)
                grad_d_w += torch.matmul(gc[:, :, N:], d.transpose(1, 2)).sum(dim=0)
        return None, grad_x_w, grad_d_w, None


def fused_difference_projection(x: Tensor, norm: nn.LayerNorm | nn.GroupNorm, proj: nn.Linear) -> Tensor:
    """proj(norm([x, |x_t - x_{t-1}|])) for x [B, C, T, H, W] -> h [B, T, H, W, D].

    `norm` is LayerNorm(2C) (statistics per token) or GroupNorm(1, 2C) (per video); both with affine
    weights. Gradients reach norm's and proj's parameters, not x.
    """
    B, C, T, H, W = x.shape
    w = proj.weight * norm.weight  # [D, 2C]: W' = W diag(gamma)
    bias = proj.bias + proj.weight @ norm.bias  # [D]: b' = W beta + b
    per_video = isinstance(norm, nn.GroupNorm)
    a, stats, squares = _DifferenceProjection.apply(x.reshape(B, C, T, H * W), w[:, :C], w[:, C:], per_video)
    if per_video:  # one mean and variance per video, summed in float64
        stats = stats.sum(dim=2, keepdim=True, dtype=torch.float64)  # [B, 2, 1]
        stats[:, 1, 0] = squares.sum(dim=1)
        count = 2 * C * T * H * W
    else:  # per token
        count = 2 * C
    mean = stats[:, 0] / count  # [B, T*N] or [B, 1]
    var = (stats[:, 1] / count - mean * mean).clamp_min_(0)
    rstd = torch.rsqrt(var + norm.eps).to(a.dtype)[..., None]
    mean = mean.to(a.dtype)[..., None]
    h = (a - mean * w.sum(dim=1)) * rstd + bias  # [B, T*N, D]
    return h.view(B, T, H, W, -1)  # [B, T, H, W, D]
