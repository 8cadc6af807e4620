"""Faster ways to compute what scripts/model.py defines: only speed lives here, never meaning.

    from scripts.models.fast_paths import linear_attention, plain_paths
    out = linear_attention(q, k, v, heads)       # the bmm form (default)
    with plain_paths():                          # the plain formulas, for tests and profiling
        out = linear_attention(q, k, v, heads)   # the per-head einsum form

Every fast path has its plain twin, and tests/test_fast_paths.py holds the two equal (single
functions, and losses and scores of a whole training run). docs/speed.md gives the measurements.

- linear_attention: the per-head einsums ("glhe,glhf->ghef", ...) move the heads into the batch and
  copy q, k, v into that layout. The fast form keeps [G, L, D]: the keys' outer products with the
  values over all D x D channels, masked to the heads' diagonal blocks, and the normaliser as a
  second block, so that one batched matmul of q gives both numerator and denominator.
- elu_plus_one: the feature map elu(x) + 1 with a backward from its output (slope 1 where the output
  exceeds 1, the output itself elsewhere), which saves the elu_backward kernel and x.
- The fused input projection is scripts/models/difference_projection.py; plain_paths() switches it off too.
"""
from __future__ import annotations

import contextlib
import threading

import torch
import torch.nn.functional as F
from torch import Tensor

_state = threading.local()


def plain() -> bool:
    """Whether the plain formulas are asked for (inside plain_paths())."""
    return getattr(_state, "plain", False)


@contextlib.contextmanager
def plain_paths():
    """Compute with the plain formulas in this thread for the `with` block (equality tests, profiling)."""
    before = plain()
    _state.plain = True
    try:
        yield
    finally:
        _state.plain = before


class _EluPlusOne(torch.autograd.Function):
    """y = elu(x) + 1 > 0; dy/dx = 1 where x > 0 (y > 1) and e^x = y where x <= 0 (y <= 1), so
    dy/dx = min(y, 1) and the backward needs only y."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = F.elu(x).add_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad * y.clamp(max=1)


def elu_plus_one(x: Tensor) -> Tensor:
    """The feature map of linear attention, elu(x) + 1 (positive)."""
    if plain():
        return F.elu(x) + 1
    return _EluPlusOne.apply(x)


def linear_attention(q: Tensor, k: Tensor, v: Tensor, heads: int, key_mask: Tensor | None = None,
                     eps: float = 1e-6) -> Tensor:
    """Kernelised attention with the feature map phi = elu + 1, cost linear in the tokens.

    q, k, v [G, L, D] (G independent groups of L tokens, D split into `heads` equal parts) -> [G, L, D]:
    out_i = phi(q_i) sum_j phi(k_j) v_j^T / (phi(q_i) . sum_j phi(k_j)) within each head.
    key_mask [G, L] (1 keep, 0 drop) leaves padding tokens out of the sums.
    """
    if plain():
        return _linear_attention_per_head(q, k, v, heads, key_mask, eps)
    G, L, D = q.shape
    q, k = elu_plus_one(q), elu_plus_one(k)
    if key_mask is not None:
        k = k * key_mask[:, :, None]
    kv = torch.bmm(k.transpose(1, 2), v)  # [G, D, D]
    ksum = k.sum(dim=1)  # [G, D]
    if heads == 1:
        a = torch.cat([kv, ksum[:, :, None]], dim=2)  # [G, D, D + 1]
        r = torch.bmm(q, a)  # [G, L, D + 1]
        return r[..., :D] / (r[..., D:] + eps)
    head = torch.arange(D, device=q.device) // (D // heads)
    same = (head[:, None] == head[None, :]).to(q.dtype)  # [D, D] the heads' diagonal blocks
    a = torch.cat([kv * same, ksum[:, :, None] * same], dim=2)  # [G, D, 2D]
    r = torch.bmm(q, a)  # [G, L, 2D]: numerators, then each channel's head normaliser
    return r[..., :D] / (r[..., D:] + eps)


def _linear_attention_per_head(q: Tensor, k: Tensor, v: Tensor, heads: int, key_mask: Tensor | None,
                               eps: float) -> Tensor:
    """The plain formula: heads as a dimension, einsums per head."""
    G, L, D = q.shape
    q = (F.elu(q) + 1).view(G, L, heads, -1)  # [G, L, h, e]
    k = (F.elu(k) + 1).view(G, L, heads, -1)
    if key_mask is not None:
        k = k * key_mask[:, :, None, None]
    v = v.view(G, L, heads, -1)
    kv = torch.einsum("glhe,glhf->ghef", k, v)  # [G, h, e, f]
    norm = torch.einsum("glhe,ghe->glh", q, k.sum(dim=1))  # [G, L, h]
    out = torch.einsum("glhe,ghef->glhf", q, kv) / (norm[..., None] + eps)
    return out.reshape(G, L, D)
