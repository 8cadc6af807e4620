"""MATE and the MIL baseline (docs/design.md §3): one module per paper component, built from a config.

    from scripts.model import config_for_variant, build_model
    cfg = config_for_variant("fast")               # or "base", "mil", "paper_fast", "paper_base"
    model = build_model(cfg)
    out = model(x)                                 # x [B, C, T, H, W] -> ModelOutput (logits)

A variant's config is a MateConfig (fast, base, paper_*) or a MilConfig (mil: scripts/models/mil.py);
`model_from_checkpoint` rebuilds a model from the config a checkpoint stores. The model returns logits.

Parts 1 and 2 (DifferenceFeatures, MotionMap) are in scripts/models/inputs.py, the rest here.
Data flow of Mate (tokens are the T*H*W positions, hidden size `dim`):
    x [B, C, T, H, W] --DifferenceFeatures--> h [B, T, H, W, D]   (|x_t - x_{t-1}| joins x, norm, Linear;
                                                                   x alone with use_difference_features=False)
    x --MotionMap--> M [B, T, H, W] in [0, 1]                    (None with use_motion_map=False)
    h --Block x num_blocks: TemporalConditionedConv, MotionConditionedAttention, FeedForward--> h
    h --MotionAwareTemporalPooling--> z [B, Q*D] (video embedding), p [B, T, D] (pooled time steps)
    p --snippet_head--> snippet logits [B, T] --topk_mean: the top k = topk_count(T)--> video logit [B]
    (video_logit="embedding", the published head: z --video_head--> video logit [B])

Departures from the published configuration, each an option kept with its evidence in docs/model.md:
input_norm video (published: token), video_logit topk (published: a head on z), no dropout (0.4), a TCC
bottleneck of 8 / 16 (32), fast's 4 attention heads (8: one channel each, where the motion conditioning
of the queries cancels), no LayerNorm before the pooling. paper_fast / paper_base are the published
architecture itself (scripts/models/paper_model.py).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scripts.core.errors import MateError
from scripts.models.fast_paths import linear_attention
from scripts.models.inputs import DifferenceFeatures, MotionMap, frame_motion  # noqa: F401 (parts 1 and 2)
from scripts.models.checkpoint import state_dict_mismatch, stored_model_config
from scripts.models.mil import MilBaseline
from scripts.models.paper_model import PaperMate
from scripts.models.part_seeds import PartSeeds
from scripts.models.config import (EMBEDDING_SNIPPET_HIDDEN, INPUT_NORMS, MATE_VARIANTS, MateConfig, MilConfig, ModelConfig, ModelOutput, PAPER_VARIANTS, TCC_MODES, VARIANTS, VIDEO_LOGITS, VIDEO_TOPK_RATIO, check_input, config_class, config_fields, config_for_variant, topk_count, topk_mean, uses_difference_features, uses_motion_map)  # noqa: F401 (re-exported)


# --- 3. the block ----------------------------------------------------------------------------------

def trailing_mean(p: Tensor, window: int) -> Tensor:
    """p [B, T, D] -> the mean of steps t-window+1..t for every t (fewer at the start) [B, T, D]."""
    T = p.shape[1]
    c = F.pad(p.cumsum(dim=1), (0, 0, 1, 0))  # [B, T+1, D]: c[t] = sum of the first t steps
    lo = (torch.arange(T, device=p.device) + 1 - window).clamp_(min=0)
    hi = torch.arange(1, T + 1, device=p.device)
    return (c[:, hi] - c[:, lo]) / (hi - lo).to(p.dtype)[None, :, None]


class TemporalConditionedConv(nn.Module):
    """Per-frame 3x3 convolution into a bottleneck, modulated per channel by a sigmoid of temporal
    context, projected back (1x1) and added residually.

    Context of frame t: the video's temporal mean of the spatially pooled tokens; `multiscale` adds
    the trailing means over 2 and 4 steps (short-term change). `gating` scales the residual branch
    per channel by sigmoid(W p_t + w_m m_t), p_t the frame's pooled tokens and m_t its mean motion.

    Args:
        dim (int): D.
        bottleneck (int): channels of the convolution.
        mode (str): plain | multiscale | gating | multiscale_gating.
    """

    def __init__(self, *, dim: int, bottleneck: int, mode: str = "plain"):
        super().__init__()
        assert mode in TCC_MODES, f"tcc mode must be one of {TCC_MODES}, got {mode!r}"
        self.mode = mode
        self.scales = (2, 4) if mode.startswith("multiscale") else ()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv2d(dim, bottleneck, kernel_size=3, padding=1)
        self.context = nn.Linear(dim * (1 + len(self.scales)), bottleneck)
        self.proj = nn.Linear(bottleneck, dim)
        gating = mode.endswith("gating")
        self.gate = nn.Linear(dim, dim) if gating else None
        self.gate_motion = nn.Parameter(torch.zeros(dim)) if gating else None

    def forward(self, h: Tensor, m: Tensor | None) -> Tensor:
        """h [B, T, H, W, D], m [B, T] mean motion per frame (None: unconditioned) -> h."""
        B, T, H, W, D = h.shape
        u = self.norm(h)
        p = u.mean(dim=(2, 3))  # [B, T, D]
        ctx = [p.mean(dim=1, keepdim=True).expand(B, T, D)] + [trailing_mean(p, s) for s in self.scales]
        g = torch.sigmoid(self.context(torch.cat(ctx, dim=-1)))  # [B, T, K]
        c = self.conv(u.reshape(B * T, H, W, D).permute(0, 3, 1, 2))  # [B*T, K, H, W]
        c = F.gelu(c.permute(0, 2, 3, 1)) * g.reshape(B * T, 1, 1, -1)  # [B*T, H, W, K]
        out = self.proj(c).reshape(B, T, H, W, D)
        if self.gate is not None:
            a = self.gate(p)  # [B, T, D]
            if m is not None:
                a = a + m[..., None] * self.gate_motion
            out = out * torch.sigmoid(a)[:, :, None, None, :]
        return h + out


class _AttentionPart(nn.Module):
    """Pre-norm projections of one attention pass (temporal or spatial)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)


class MotionConditionedAttention(nn.Module):
    """Linear attention along time over spatially pooled tokens (broadcast back to every token of the
    frame), then within each frame over space (or within spatial_window x spatial_window windows).

    Queries are scaled by 1 + tanh(M) BEFORE the elu + 1 feature map (after it, a per-query scale
    would cancel in the normalisation): the frame's mean motion in time, the token's motion in space.
    So moving tokens ask sharper questions; M = None leaves the queries unscaled.

    Args:
        dim (int): D.
        heads (int): attention heads.
        spatial_window (int): 0 = the whole frame; w > 0 = w x w windows (the edge ones padded).
    """

    def __init__(self, *, dim: int, heads: int = 1, spatial_window: int = 0):
        super().__init__()
        self.heads, self.window = heads, spatial_window
        self.temporal = _AttentionPart(dim)
        self.spatial = _AttentionPart(dim)

    def forward(self, h: Tensor, M: Tensor | None) -> Tensor:
        """h [B, T, H, W, D], M [B, T, H, W] or None -> h."""
        h = h + self._temporal(h, frame_motion(M))[:, :, None, None, :]
        return h + self._spatial(h, M)

    def _temporal(self, h: Tensor, m: Tensor | None) -> Tensor:
        """h [B, T, H, W, D], m [B, T] the frames' mean motion or None -> the temporal pass [B, T, D]."""
        part = self.temporal
        q, k, v = part.qkv(part.norm(h).mean(dim=(2, 3))).chunk(3, dim=-1)  # [B, T, D] each
        if m is not None:
            q = q * (1 + torch.tanh(m))[..., None]
        return part.out(linear_attention(q, k, v, self.heads))

    def _spatial(self, h: Tensor, M: Tensor | None) -> Tensor:
        """h [B, T, H, W, D], M [B, T, H, W] or None -> the spatial pass [B, T, H, W, D]."""
        B, T, H, W, D = h.shape
        part = self.spatial
        u = part.norm(h)
        w = self.window
        if w == 0 or (w >= H and w >= W):
            q, k, v = part.qkv(u.reshape(B * T, H * W, D)).chunk(3, dim=-1)  # [B*T, H*W, D] each
            if M is not None:
                q = q * (1 + torch.tanh(M.reshape(B * T, H * W, 1)))
            return part.out(linear_attention(q, k, v, self.heads)).reshape(B, T, H, W, D)
        ph, pw = -H % w, -W % w
        nh, nw = (H + ph) // w, (W + pw) // w
        u = F.pad(u, (0, 0, 0, pw, 0, ph)).view(B * T, nh, w, nw, w, D)
        u = u.transpose(2, 3).reshape(B * T * nh * nw, w * w, D)  # [G, w*w, D]
        q, k, v = part.qkv(u).chunk(3, dim=-1)
        if M is not None:
            Mw = F.pad(M.reshape(B * T, H, W), (0, pw, 0, ph)).view(B * T, nh, w, nw, w)
            q = q * (1 + torch.tanh(Mw.transpose(2, 3).reshape(-1, w * w, 1)))
        mask = None
        if ph or pw:
            mask = F.pad(h.new_ones(B * T, H, W), (0, pw, 0, ph)).view(B * T, nh, w, nw, w)
            mask = mask.transpose(2, 3).reshape(-1, w * w)  # [G, w*w]
        out = part.out(linear_attention(q, k, v, self.heads, mask))  # [G, w*w, D]
        out = out.view(B * T, nh, nw, w, w, D).transpose(2, 3).reshape(B, T, nh * w, nw * w, D)
        return out[:, :, :H, :W]


class FeedForward(nn.Module):
    """Pre-norm MLP with `mult`x expansion and GELU, added residually."""

    def __init__(self, *, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mult * dim), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(mult * dim, dim), nn.Dropout(dropout))

    def forward(self, h: Tensor) -> Tensor:
        return h + self.net(h)


class Block(nn.Module):
    """TCC, motion-conditioned attention and feed-forward, each pre-norm residual; a disabled
    component is None and skipped."""

    def __init__(self, cfg: MateConfig, seeds: PartSeeds, name: str):
        super().__init__()
        self.tcc = (seeds.build(f"{name}.tcc", lambda: TemporalConditionedConv(
            dim=cfg.dim, bottleneck=cfg.tcc_bottleneck, mode=cfg.tcc_mode)) if cfg.use_tcc else None)
        self.attention = (seeds.build(f"{name}.attention", lambda: MotionConditionedAttention(
            dim=cfg.dim, heads=cfg.num_heads, spatial_window=cfg.spatial_window)) if cfg.use_attention else None)
        self.ff = seeds.build(f"{name}.ff", lambda: FeedForward(dim=cfg.dim, mult=cfg.ff_mult, dropout=cfg.dropout))

    def forward(self, h: Tensor, M: Tensor | None) -> Tensor:
        if self.tcc is not None:
            h = self.tcc(h, frame_motion(M))
        if self.attention is not None:
            h = self.attention(h, M)
        return self.ff(h)


class TemporalSmoothing(nn.Module):
    """A learnable depthwise convolution along time, per token position and channel, added residually
    before the pooling (off by default: use_temporal_smoothing; configs/ablations/temporal_smoothing.json).

    Args:
        dim (int): D.
        kernel (int): time steps it spans (odd, centred).
    """

    def __init__(self, *, dim: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size=kernel, padding=kernel // 2, groups=dim)

    def forward(self, h: Tensor) -> Tensor:
        B, T, H, W, D = h.shape
        u = h.permute(0, 2, 3, 4, 1).reshape(B * H * W, D, T)  # [B*H*W, D, T]
        out = self.conv(u).reshape(B, H, W, D, T).permute(0, 4, 1, 2, 3)  # [B, T, H, W, D]
        return h + out


# --- 4. pooling and 5. heads -----------------------------------------------------------------------

class MotionAwareTemporalPooling(nn.Module):
    """Motion-weighted spatial pooling per time step, then Q learned queries attend over time.

    Spatial weights softmax_space(s * M) (s learned; M = None or M = 0 gives the plain mean).
    Temporal scores: q_i . (W_k p_t) / sqrt(D) + b_i * m_t, with b_i a learned motion bias per
    query. Returns z [B, Q*D] (the video embedding) and the pooled time steps p [B, T, D].

    Args:
        dim (int): D.
        num_queries (int): Q.
        motion_scale (float): initial s; with M in [0, 1], e^s is the weight of the most moving token
            relative to a still one.
    """

    def __init__(self, *, dim: int, num_queries: int = 8, motion_scale: float = 2.0):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, dim) / math.sqrt(dim))
        self.key = nn.Linear(dim, dim)
        self.motion_scale = nn.Parameter(torch.tensor(float(motion_scale)))
        self.motion_bias = nn.Parameter(torch.zeros(num_queries))

    def forward(self, h: Tensor, M: Tensor | None) -> tuple[Tensor, Tensor]:
        B, T, H, W, D = h.shape
        if M is None:
            p = h.mean(dim=(2, 3))  # [B, T, D]
        else:
            a = torch.softmax(self.motion_scale * M.reshape(B, T, H * W), dim=-1)  # [B, T, N]
            p = torch.matmul(a.unsqueeze(2), h.reshape(B, T, H * W, D)).squeeze(2)  # [B, T, D]
        scores = torch.einsum("qd,btd->bqt", self.queries, self.key(p)) / math.sqrt(D)  # [B, Q, T]
        if M is not None:
            scores = scores + self.motion_bias[:, None] * frame_motion(M)[:, None, :]
        z = torch.matmul(torch.softmax(scores, dim=-1), p)  # [B, Q, D]
        return z.reshape(B, -1), p


def mean_max_pooling(h: Tensor) -> tuple[Tensor, Tensor]:
    """The plain pooling of --no_motion_pooling: p = spatial mean [B, T, D], z = [mean_t p, max_t p]."""
    p = h.mean(dim=(2, 3))  # [B, T, D]
    return torch.cat([p.mean(dim=1), p.amax(dim=1)], dim=-1), p  # [B, 2D], [B, T, D]


def mlp_head(in_features: int, hidden: int, dropout: float = 0.0) -> nn.Module:
    """in_features -> 1 logit; hidden = 0 gives a single linear layer."""
    if hidden == 0:
        return nn.Linear(in_features, 1)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, 1))


# --- the models ------------------------------------------------------------------------------------

class Mate(nn.Module):
    """MATE: difference features, MotionMap, blocks, motion-aware pooling, video and snippet heads.

    The motion-free ablation (no_motion: use_motion_map=False, use_difference_features=False) sees
    neither input: the projection takes x alone, the MotionMap is None and the reported motion is 0."""

    def __init__(self, cfg: MateConfig):
        super().__init__()
        self.cfg = cfg
        # Each part's initial weights from its name (scripts/models/part_seeds.py): adding a part, on or off,
        # leaves the others' as they were, so the rows of an ablation study start from the same weights.
        seeds = PartSeeds()
        with seeds.isolated():
            self.embed = seeds.build("embed", lambda: DifferenceFeatures(
                in_channels=cfg.in_channels, dim=cfg.dim, norm=cfg.input_norm, differences=cfg.use_difference_features))
            self.motion_map = MotionMap(window=cfg.motion_window) if cfg.use_motion_map else None
            # No final LayerNorm before pooling: over D = 8 features it rescales every still background
            # token to unit size, drowning the few event tokens in the spatial mean (docs/model.md).
            self.blocks = nn.ModuleList([Block(cfg, seeds, f"blocks.{i}") for i in range(cfg.num_blocks)])
            self.temporal_smoothing = (seeds.build("temporal_smoothing", lambda: TemporalSmoothing(dim=cfg.dim))
                                       if cfg.use_temporal_smoothing else None)
            self.motion_pooling = (seeds.build("motion_pooling", lambda: MotionAwareTemporalPooling(
                dim=cfg.dim, num_queries=cfg.num_queries)) if cfg.use_motion_pooling else None)
            embed_dim = cfg.num_queries * cfg.dim if cfg.use_motion_pooling else 2 * cfg.dim
            # Published: the video logit from z by its own head. Default ("topk"): the video logit is the
            # mean of the top-k snippet logits, which trains far better from video labels (docs/model.md).
            self.video_head = (seeds.build("video_head", lambda: mlp_head(embed_dim, cfg.head_hidden, cfg.dropout))
                               if cfg.video_logit == "embedding" else None)
            self.snippet_head = seeds.build("snippet_head", lambda: mlp_head(
                cfg.dim, cfg.snippet_hidden, cfg.dropout if self.video_head is None else 0.0))

    def forward(self, x: Tensor, motion: Tensor | None = None) -> ModelOutput:
        """x [B, C, T, H, W]; motion [B, T, H, W] overrides the MotionMap (ignored without one)."""
        check_input(x, self.cfg.in_channels)
        B, C, T, H, W = x.shape
        M = None
        if self.motion_map is not None:
            if motion is None:
                M = self.motion_map(x)
            else:
                assert motion.shape == (B, T, H, W), \
                    f"motion must be [B, T, H, W] = {[B, T, H, W]}, got {list(motion.shape)}"
                M = motion.to(device=x.device, dtype=torch.promote_types(x.dtype, torch.float32))
        h = self.embed(x)  # [B, T, H, W, D]
        for block in self.blocks:
            h = block(h, M)
        if self.temporal_smoothing is not None:
            h = self.temporal_smoothing(h)
        if self.motion_pooling is not None:
            z, p = self.motion_pooling(h, M)  # [B, Q*D], [B, T, D]
        else:
            z, p = mean_max_pooling(h)  # [B, 2D], [B, T, D]
        snippet_logits = self.snippet_head(p).squeeze(-1)  # [B, T]
        if self.video_head is not None:
            video_logit = self.video_head(z).squeeze(-1)  # [B]
        else:
            video_logit = topk_mean(snippet_logits)  # [B]
        return ModelOutput(video_logit=video_logit, snippet_logits=snippet_logits,
                           embedding=z,
                           motion=M if M is not None else x.new_zeros(B, T, H, W, dtype=torch.float32))


def feature_motion_map(model: nn.Module) -> tuple[int, float] | None:
    """(window, eps) of the model's MotionMap when it is a function of the input features alone (Mate
    with a MotionMap), so that a data set may compute it once per video and pass it as `motion`
    (FeatureDataset.motion_maps); None for the MIL baseline (no map), use_motion_map=False, and the
    published model (its map is taken on the projected, learned features)."""
    if not isinstance(model, Mate) or model.motion_map is None:
        return None
    return model.motion_map.window, model.motion_map.eps


def build_model(cfg: ModelConfig) -> nn.Module:
    """Mate for the fast and base variants, MilBaseline for mil, PaperMate for paper_*."""
    if isinstance(cfg, MilConfig):
        return MilBaseline(cfg)
    assert isinstance(cfg, MateConfig), f"build_model needs a MateConfig or MilConfig, got {type(cfg).__name__}"
    if cfg.variant in PAPER_VARIANTS:
        return PaperMate(cfg)
    return Mate(cfg)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- from a checkpoint (scripts/models/checkpoint.py reads it) --------------------------------------

def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state dict's key -> shape of the model `cfg` builds (on the meta device: no memory, no RNG)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}


def model_from_checkpoint(state: dict[str, Any], *,
                          source: str | Path = "checkpoint") -> tuple[torch.nn.Module, ModelConfig]:
    """Rebuild the model from a loaded checkpoint's config and load its weights strictly."""
    cfg = stored_model_config(state["model_config"], source=source)
    model = build_model(cfg)
    mismatch = state_dict_mismatch(expected_shapes(cfg), state["model"])
    if mismatch:
        raise MateError(f"{source}: weights do not match the stored model config ({mismatch})")
    model.load_state_dict(state["model"], strict=True)
    return model.eval(), cfg


def init_from_checkpoint(model: torch.nn.Module, cfg: ModelConfig, state: dict[str, Any], *,
                         source: str | Path) -> None:
    """Load a loaded checkpoint's weights (a MATE run's or a published state dict) into `model`, built
    from `cfg`, before training: the same variant, and the weights must load strictly."""
    path, stored = source, state["model_config"]
    if stored.get("variant") != cfg.variant:
        raise MateError(f"{path}: holds a {stored.get('variant')} model, this run builds {cfg.variant} "
                        "(--model_variant)")
    mismatch = state_dict_mismatch(expected_shapes(cfg), state["model"])
    if mismatch:
        differ = sorted(k for k, v in dataclasses.asdict(cfg).items() if k in stored and stored[k] != v)
        because = f"model options differ: {', '.join(differ)}; " if differ else ""
        raise MateError(f"{path}: its weights do not fit this run's {cfg.variant} model ({because}{mismatch})")
    model.load_state_dict(state["model"], strict=True)
