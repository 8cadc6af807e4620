"""The published MATE architecture (AIx699/MATE, model.py), reimplemented number for number.

    from scripts.model import build_model, config_for_variant
    model = build_model(config_for_variant("paper_base"))      # or "paper_fast" (dim 8)
    model.load_state_dict(torch.load("data/published/MATE_base.pkl", weights_only=True))
    out = model(x)                                   # x [B, 192, T, H, W] -> ModelOutput (logits)

Variants paper_fast (dim 8, 8,378 parameters) and paper_base (dim 32, 40,130) are the published
`Model(dim=8)` and `Model(dim=32)`; the state dict has the published key names and shapes, so the
authors' MATE_base.pkl loads strictly (scripts/models/checkpoint.py wraps it as a checkpoint). Unlike the
published forward, which ends in a sigmoid, this one returns the logit: the sigmoid is applied once,
in the loss or at scoring.

Data flow (D = dim, Q = num_queries, K = the TCC's bottleneck, 32 for both variants):
    x [B, C, T, H, W] -> [x, |x_t - x_{t-1}|] (2C channels) -> LayerNorm per token -> Linear -> h [B, T, H, W, D]
    h --MotionMap--> M [B, T, H, W, 1]          (on the projected h: it depends on learned weights)
    h --block: TemporalConditionedConv, MotionConditionedAttention, h + FeedForward(h)--> h
    h --MotionAwareTemporalPooling--> z [B, Q*D] --dropout, LayerNorm--> embedding --fc--> video logit

What the published code does that one might not expect (kept here, because it is what the weights
were trained with):
- The MotionMap is taken on the projected features, with gradient, and compares step t with the
  mean of steps t-2..t (itself included) after zero padding, so the first two steps of every video
  "move" strongly; each frame is divided by its own maximum, so every frame's peak is 1.
- The TCC's channel weights and its gate are one set per video (from the video's mean features),
  shared by all time steps; the gate is a scalar per frame, sigmoid(fc(weights) + frame motion).
  Its 2- and 4-step "multi-scale" contexts are means of sliding-window means, nearly the plain mean.
- The attention's "temporal embedding" is one learned vector added to every token (no position).
  Both passes share one qkv projection; `to_out` is created but never applied (its weights sit
  unused in the state dict). The motion scaling of the queries comes after the elu + 1 feature
  map, so it cancels in the normalisation up to eps. The temporal pass is added to the tokens; the
  spatial pass then replaces them (no residual around it).
- The pooling weights the tokens of a frame by M / sum(M) (an all-zero MotionMap zeroes the pooled
  features), and the queries score the time steps with a plain dot product (no key projection, no
  1/sqrt(D)). Dropout comes before the final LayerNorm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scripts.models.config import MateConfig, ModelOutput, check_input


def published_init(module: nn.Module) -> None:
    """The published main.py's `init_weights`: Xavier-uniform Linear weights with zero biases,
    Kaiming-normal (fan_out, ReLU) Conv2d weights; everything else keeps PyTorch's default."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


class MotionMap(nn.Module):
    """M [B, T, H, W, 1]: per token, |h_t - mean(h_{t-window}, ..., h_t)| over the D channels, with
    zeros before the first step, divided by the frame's maximum. No parameters.

    Args:
        window (int): preceding steps in the reference mean (published: 2).
        eps (float): keeps a frame with no difference at 0 instead of 0 / 0.
    """

    def __init__(self, *, window: int = 2, eps: float = 1e-6):
        super().__init__()
        self.window, self.eps = window, eps

    def forward(self, h: Tensor) -> Tensor:
        B, T, H, W, D = h.shape
        padded = F.pad(h, (0, 0, 0, 0, 0, 0, self.window, 0))  # [B, window+T, H, W, D]
        reference = padded.unfold(1, self.window + 1, 1).mean(-1)  # [B, T, H, W, D]
        magnitude = (h - reference).norm(dim=-1, keepdim=True)  # [B, T, H, W, 1]
        return magnitude / (magnitude.amax(dim=(2, 3, 4), keepdim=True) + self.eps)

    def extra_repr(self) -> str:
        return f"window={self.window}"


class TemporalConditionedConv(nn.Module):
    """A per-frame 3x3 convolution into K channels, each channel scaled by a per-video weight from
    the video's mean features, back to D by a 1x1 convolution, added as h + g * y / 2.

    Args:
        dim (int): D.
        bottleneck (int): K (published: max(int(dim / 4), 32)).
        multiscale (bool): the context also holds the means of the 2- and 4-step sliding means.
        gating (bool): scale the update by g = sigmoid(gate_fc(weights) + the frame's mean motion);
            without it g = 1.
        dropout (float): on the update.
    """

    res_scale = 0.5

    def __init__(self, *, dim: int, bottleneck: int = 32, multiscale: bool = True, gating: bool = True,
                 dropout: float = 0.4):
        super().__init__()
        self.scales = (2, 4) if multiscale else ()
        self.conv = nn.Conv2d(dim, bottleneck, kernel_size=3, padding=1)
        self.temporal_fc = nn.Linear(dim * (1 + len(self.scales)), bottleneck)
        self.conv_out = nn.Conv2d(bottleneck, dim, kernel_size=1)
        self.dropout = nn.Dropout(dropout)
        self.gate_fc = nn.Linear(bottleneck, 1) if gating else None

    def forward(self, h: Tensor, M: Tensor | None) -> Tensor:
        """h [B, T, H, W, D], M [B, T, H, W, 1] or None -> h."""
        B, T, H, W, D = h.shape
        y = self.conv(h.reshape(B * T, H, W, D).permute(0, 3, 1, 2))  # [B*T, K, H, W]
        context = [h.mean(dim=(2, 3)).mean(dim=1)]  # [B, D]
        for s in self.scales:
            context.append(h.unfold(1, min(s, T), 1).mean(-1).mean(dim=(1, 2, 3)))  # [B, D]
        weights = torch.sigmoid(self.temporal_fc(torch.cat(context, dim=-1)))  # [B, K]: one set per video
        y = y * weights.repeat_interleave(T, dim=0)[:, :, None, None]  # [B*T, K, H, W]
        y = self.dropout(self.conv_out(y))  # [B*T, D, H, W]
        y = y.permute(0, 2, 3, 1).reshape(B, T, H, W, D)
        if self.gate_fc is None:
            return h + y * self.res_scale
        motion = M.mean(dim=(2, 3, 4), keepdim=True) if M is not None else 0  # [B, T, 1, 1, 1]
        g = torch.sigmoid(self.gate_fc(weights)[:, None, None, None, :] + motion)  # [B, T or 1, 1, 1, 1]
        return h + g * y * self.res_scale


def linear_attention(q: Tensor, k: Tensor, v: Tensor, query_scale: Tensor | None = None,
                     eps: float = 1e-6) -> Tensor:
    """q, k, v [..., N, e] -> [..., N, e]: phi(q) (sum_j phi(k_j) v_j^T) / (phi(q) . sum_j phi(k_j) + eps),
    phi = elu + 1; `query_scale` multiplies phi(q), so it cancels but for eps (as published)."""
    q, k = F.elu(q) + 1, F.elu(k) + 1
    if query_scale is not None:
        q = q * query_scale
    kv = k.transpose(-2, -1) @ v  # [..., e, e]
    z = 1 / (q @ k.sum(dim=-2, keepdim=True).transpose(-2, -1) + eps)  # [..., N, 1]
    return (q @ kv) * z


class MotionConditionedAttention(nn.Module):
    """Linear attention over time on the frames' mean tokens (added to every token of the frame),
    then within each frame over space (its output is the block's new h), one qkv for both.

    Args:
        dim (int): D.
        heads (int): attention heads (published: 8; dim 8 gives heads of size 1).
    """

    def __init__(self, *, dim: int, heads: int = 8):
        super().__init__()
        assert dim % heads == 0, f"dim {dim} must be divisible by heads {heads}"
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)  # never applied, as published; kept so the weights load
        self.temporal_emb = nn.Parameter(torch.randn(1, 1, 1, 1, dim))

    def _split(self, t: Tensor) -> Tensor:
        G, N, D = t.shape
        return t.view(G, N, self.heads, D // self.heads).transpose(1, 2)  # [G, heads, N, e]

    def forward(self, h: Tensor, M: Tensor | None) -> Tensor:
        """h [B, T, H, W, D], M [B, T, H, W, 1] or None -> h."""
        B, T, H, W, D = h.shape
        h = h + self.temporal_emb
        frames = h.reshape(B, T, H * W, D).mean(dim=2)  # [B, T, D]
        q, k, v = map(self._split, self.to_qkv(frames).chunk(3, dim=-1))  # [B, heads, T, e] each
        scale = None
        if M is not None:
            scale = 1 + torch.tanh(M.reshape(B, T, H * W).mean(dim=-1, keepdim=True)).unsqueeze(1)  # [B, 1, T, 1]
        temporal = linear_attention(q, k, v, scale).transpose(1, 2).reshape(B, T, D)
        h = h + temporal[:, :, None, None, :]  # [B, T, H, W, D]

        tokens = h.reshape(B * T, H * W, D)
        q, k, v = map(self._split, self.to_qkv(tokens).chunk(3, dim=-1))  # [B*T, heads, H*W, e] each
        scale = None
        if M is not None:
            scale = 1 + torch.tanh(M.reshape(B * T, H * W, 1)).unsqueeze(1)  # [B*T, 1, H*W, 1]
        spatial = linear_attention(q, k, v, scale).transpose(1, 2)  # [B*T, H*W, heads, e]
        return spatial.reshape(B, T, H, W, D)


def feed_forward(dim: int, dropout: float) -> nn.Sequential:
    """LayerNorm, Linear 4x, GELU, Linear, dropout (published indices 0, 1, 3: the keys ff.0/1/3)."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim),
                         nn.Dropout(dropout))


class Block(nn.Module):
    """The published EfficientADAMBlock: h = tcc(h); h = attn(h); h = h + ff(h)."""

    def __init__(self, *, dim: int, heads: int, bottleneck: int, multiscale: bool, gating: bool,
                 dropout: float):
        super().__init__()
        self.tcc = TemporalConditionedConv(dim=dim, bottleneck=bottleneck, multiscale=multiscale,
                                           gating=gating, dropout=dropout)
        self.attn = MotionConditionedAttention(dim=dim, heads=heads)
        self.ff = feed_forward(dim, dropout)

    def forward(self, h: Tensor, M: Tensor | None) -> Tensor:
        h = self.tcc(h, M)
        h = self.attn(h, M)
        return h + self.ff(h)


class MotionAwareTemporalPooling(nn.Module):
    """Per frame, the tokens weighted by M / sum(M) (the plain mean without a MotionMap); then Q
    learned queries attend over time by softmax(query . p_t). Returns z [B, Q*D] and p [B, T, D].

    Args:
        dim (int): D.
        num_queries (int): Q.
    """

    def __init__(self, *, dim: int, num_queries: int = 8):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, num_queries, dim))

    def forward(self, h: Tensor, M: Tensor | None) -> tuple[Tensor, Tensor]:
        B, T, H, W, D = h.shape
        tokens = h.reshape(B, T, H * W, D)
        if M is None:
            p = tokens.mean(dim=2)  # [B, T, D]
        else:
            m = M.reshape(B, T, H * W, 1)
            p = (tokens * (m / (m.sum(dim=2, keepdim=True) + 1e-6))).sum(dim=2)  # [B, T, D]
        attn = (self.query.expand(B, -1, -1) @ p.transpose(1, 2)).softmax(dim=-1)  # [B, Q, T]
        return (attn @ p).reshape(B, -1), p  # [B, Q*D], [B, T, D]


class PaperMate(nn.Module):
    """The published `Model`, built from a MateConfig of variant paper_fast or paper_base.

    Returns ModelOutput with
        video_logit     fc(LayerNorm(dropout(z))), the published output before its sigmoid;
        embedding       LayerNorm(dropout(z)) [B, Q*D], the published `pooled`;
        snippet_logits  [B, T]: per time step t, the logit the same norm and fc give when every query
                        attends to step t alone (z = p_t repeated Q times). Not a decomposition of the
                        video logit (the LayerNorm is not linear); the published model has no snippet
                        scores, and nothing in it is trained on these;
        motion          the MotionMap [B, T, H, W] (zeros with use_motion_map=False).
    """

    def __init__(self, cfg: MateConfig):
        super().__init__()
        self.cfg = cfg
        C, D = cfg.in_channels, cfg.dim
        self.norm0 = nn.LayerNorm(2 * C)
        self.input_proj = nn.Linear(2 * C, D)
        self.motion_map_module = MotionMap(window=cfg.motion_window) if cfg.use_motion_map else None
        self.blocks = nn.ModuleList([
            Block(dim=D, heads=cfg.num_heads, bottleneck=cfg.tcc_bottleneck,
                  multiscale=cfg.tcc_mode.startswith("multiscale"), gating=cfg.tcc_mode.endswith("gating"),
                  dropout=cfg.dropout)
            for _ in range(cfg.num_blocks)])
        self.temporal_pool = MotionAwareTemporalPooling(dim=D, num_queries=cfg.num_queries)
        self.norm = nn.LayerNorm(cfg.num_queries * D)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.num_queries * D, 1)
        self.apply(published_init)

    def forward(self, x: Tensor, motion: Tensor | None = None) -> ModelOutput:
        """x [B, C, T, H, W] (any float dtype; computed in the weights' dtype); motion [B, T, H, W]
        replaces the MotionMap (ignored with use_motion_map=False)."""
        check_input(x, self.cfg.in_channels)
        B, C, T, H, W = x.shape
        x = x.to(self.norm0.weight.dtype)
        d = F.pad((x[:, :, 1:] - x[:, :, :-1]).abs(), (0, 0, 0, 0, 1, 0))  # [B, C, T, H, W], 0 at t = 0
        u = torch.cat([x, d], dim=1).permute(0, 2, 3, 4, 1)  # [B, T, H, W, 2C]
        h = self.input_proj(self.norm0(u))  # [B, T, H, W, D]
        M = None
        if self.motion_map_module is not None:
            if motion is None:
                M = self.motion_map_module(h)  # [B, T, H, W, 1]
            else:
                assert motion.shape == (B, T, H, W), \
                    f"motion must be [B, T, H, W] = {[B, T, H, W]}, got {list(motion.shape)}"
                M = motion.to(device=h.device, dtype=h.dtype)[..., None]  # [B, T, H, W, 1]
        for block in self.blocks:
            h = block(h, M)
        z, p = self.temporal_pool(h, M)  # [B, Q*D], [B, T, D]
        embedding = self.norm(self.dropout(z))  # [B, Q*D]
        Q = self.cfg.num_queries
        per_step = self.norm(self.dropout(p.repeat(1, 1, Q)))  # [B, T, Q*D]: every query on step t
        return ModelOutput(video_logit=self.fc(embedding).squeeze(-1),
                           snippet_logits=self.fc(per_step).squeeze(-1),
                           embedding=embedding,
                           motion=(M.detach().squeeze(-1) if M is not None
                                   else h.new_zeros(B, T, H, W)))
