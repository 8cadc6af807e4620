"""The model's configuration, apart from the modules that read it: MateConfig and MilConfig with their
validation, the variants (fast, base, the published paper_fast / paper_base, the MIL baseline) and their
defaults, and what the model and the published architecture share (ModelOutput, the top-k video logit,
the input check). scripts/model.py builds the modules; scripts/models/paper_model.py the published ones.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Union

from torch import Tensor

from scripts.core.errors import MateError

PAPER_VARIANTS = ("paper_fast", "paper_base")  # the published architecture (scripts/models/paper_model.py)
MATE_VARIANTS = ("fast", "base") + PAPER_VARIANTS  # built from a MateConfig
VARIANTS = ("fast", "base", "mil") + PAPER_VARIANTS
TCC_MODES = ("plain", "multiscale", "gating", "multiscale_gating")
VIDEO_LOGITS = ("topk", "embedding")
INPUT_NORMS = ("video", "token")
VIDEO_TOPK_RATIO = 0.125  # the video logit of Mate and MilBaseline: the mean of the top T // 8 snippets


def _check_config(cfg, variants: tuple[str, ...], positive: tuple[str, ...] = (),
                  non_negative: tuple[str, ...] = ()) -> None:
    """The value checks every config shares; a bad value is a MateError naming the key."""
    def fault(key: str, expected: str) -> MateError:
        return MateError(f"model config: {key} must be {expected}, got {getattr(cfg, key)!r}")

    if cfg.variant not in variants:
        raise fault("variant", "one of " + ", ".join(variants))
    for key in positive:
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fault(key, "a positive integer")
    for key in non_negative:
        value = getattr(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fault(key, "an integer >= 0")
    if isinstance(cfg.dropout, bool) or not isinstance(cfg.dropout, (int, float)) or not 0.0 <= cfg.dropout < 1.0:
        raise fault("dropout", "in [0, 1)")


@dataclass
class MateConfig:
    """Hyper-parameters of Mate and PaperMate; plain values only, so a checkpoint can store `asdict(cfg)`.

    The defaults are the `fast` variant. Ablation switches set a component to None (skipped).
    """
    variant: str = "fast"  # fast | base | paper_fast | paper_base
    in_channels: int = 192  # C of the features (192 for X3D-L maps, e.g. 2048 for I3D sequences)
    dim: int = 8  # hidden size D of every token
    num_blocks: int = 1
    num_heads: int = 8  # attention heads (dim must be divisible); the published 8 (1 gained nothing, docs/model.md)
    motion_window: int = 2  # MotionMap: preceding steps averaged as the reference
    use_motion_map: bool = True  # False: every part runs unconditioned (--no_motion_map)
    # False: the input projection sees x alone (C channels, no |x_t - x_{t-1}|); with use_motion_map=False
    # too, no input of the model is a motion signal (the no_motion ablation) (--no_difference_features)
    use_difference_features: bool = True
    use_attention: bool = True  # --no_attention
    use_tcc: bool = True  # --no_tcc
    # plain | multiscale | gating | multiscale_gating (the published TCC; plain lost on harder data, docs/model.md)
    tcc_mode: str = "multiscale_gating"
    tcc_bottleneck: int = 8  # channels of the TCC's spatial convolution
    use_motion_pooling: bool = True  # False: plain mean/max pooling (--no_motion_pooling)
    num_queries: int = 8  # Q learned queries of the temporal pooling; z has Q*dim entries
    spatial_window: int = 0  # 0: spatial attention over the whole frame; w > 0: within w x w windows
    ff_mult: int = 4  # feed-forward expansion
    head_hidden: int = 32  # hidden units of the video head, video_logit="embedding" only (0: linear)
    snippet_hidden: int = 256  # hidden units of the snippet head (0: a single linear layer)
    dropout: float = 0.0
    input_norm: str = "video"  # video: statistics over the whole video; token: published per-token LN
    video_logit: str = "topk"  # topk: mean of the top-k snippet logits; embedding: the published head on z
    # (z then still feeds the triplet loss and the diagnostics; with topk it conditions nothing else)

    def __post_init__(self):
        _check_config(self, MATE_VARIANTS,
                      positive=("in_channels", "dim", "num_blocks", "num_heads", "motion_window",
                                "tcc_bottleneck", "num_queries", "ff_mult"),
                      non_negative=("spatial_window", "head_hidden", "snippet_hidden"))
        for key, choices in (("tcc_mode", TCC_MODES), ("input_norm", INPUT_NORMS), ("video_logit", VIDEO_LOGITS)):
            if getattr(self, key) not in choices:
                raise MateError(f"model config: {key} must be one of {', '.join(choices)}, "
                                f"got {getattr(self, key)!r}")
        for key in ("use_motion_map", "use_difference_features", "use_attention", "use_tcc", "use_motion_pooling"):
            if not isinstance(getattr(self, key), bool):
                raise MateError(f"model config: {key} must be true or false, got {getattr(self, key)!r}")
        if self.dim % self.num_heads:
            raise MateError(f"model config: num_heads must be a divisor of dim = {self.dim}, got {self.num_heads}")
        if self.variant in PAPER_VARIANTS:
            for key, value in PAPER_FIXED.items():
                if getattr(self, key) != value:
                    raise MateError(f"model config: {key} must be {value!r} for {self.variant} (fixed by the "
                                    f"published architecture), got {getattr(self, key)!r}")


@dataclass
class MilConfig:
    """Hyper-parameters of the MIL baseline (Sultani et al., 2018): a 512-32-1 MLP on every snippet.

    It has no MotionMap, attention, TCC or motion pooling, so none of MATE's options exist here.
    """
    variant: str = "mil"
    in_channels: int = 192  # C of the features
    hidden: int = 512  # first FC layer (Sultani et al.: 512)
    embed: int = 32  # second FC layer; the embedding is its temporal mean (Sultani et al.: 32)
    # Sultani et al. used dropout 0.6; here it stops the MLP from learning at all (docs/model.md)
    dropout: float = 0.0

    def __post_init__(self):
        _check_config(self, ("mil",), positive=("in_channels", "hidden", "embed"))


ModelConfig = Union[MateConfig, MilConfig]


def config_class(variant: str) -> type:
    """MilConfig for mil, MateConfig for the others (an unknown variant is a MateError)."""
    if variant not in VARIANTS:
        raise MateError(f"model config: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return MilConfig if variant == "mil" else MateConfig


def config_fields(variant: str) -> tuple[str, ...]:
    """The keys a stored config of `variant` has, in order."""
    return tuple(f.name for f in dataclasses.fields(config_class(variant)))


# Each MATE variant's departures from the MateConfig defaults (which are fast's). Sizes are tuned to
# the published parameter counts on 192-channel input, about 8.5k and 40k: with the default top-k
# video logit the budget of the published video head goes to the snippet head; with
# video_logit="embedding" the snippet head shrinks back (EMBEDDING_SNIPPET_HIDDEN) to keep the count.
VARIANT_DEFAULTS: dict[str, dict] = {
    "fast": {},
    "base": dict(dim=32, tcc_bottleneck=16, head_hidden=0, snippet_hidden=80),
    "mil": {},  # MilConfig's defaults
    # The published Model(dim=8) and Model(dim=32): heads 8, multiscale TCC with motion gating,
    # dropout 0.4 (its main.py's --dropout_rate default); the TCC bottleneck follows dim (below).
    "paper_fast": dict(dim=8, num_heads=8, tcc_mode="multiscale_gating", dropout=0.4, input_norm="token",
                       video_logit="embedding"),
    "paper_base": dict(dim=32, num_heads=8, tcc_mode="multiscale_gating", dropout=0.4, input_norm="token",
                       video_logit="embedding"),
}
EMBEDDING_SNIPPET_HIDDEN = {"fast": 16, "base": 16}
# The paper variants use in_channels, dim, num_blocks, num_heads, motion_window, use_motion_map,
# tcc_mode, tcc_bottleneck, num_queries and dropout; these fields must keep the values below (the
# published code has no other setting, and always projects [x, |x_t - x_{t-1}|]; its windowed spatial
# attention puts the windows' tokens back in the wrong places, so spatial_window is 0). head_hidden and
# snippet_hidden are unused.
PAPER_FIXED = dict(use_difference_features=True, use_attention=True, use_tcc=True, use_motion_pooling=True,
                   spatial_window=0, ff_mult=4, input_norm="token", video_logit="embedding")


def config_for_variant(variant: str, **overrides) -> ModelConfig:
    """The variant's config with `overrides` applied; an override of None keeps the variant's value
    (so CLI flags defaulting to None can be passed straight through). A key the variant's config
    lacks (e.g. dim for mil) is a MateError, None or not."""
    cls = config_class(variant)
    unknown = sorted(set(overrides) - set(config_fields(variant)))
    if unknown:
        raise MateError(f"model config: unknown key(s) {', '.join(unknown)} for variant {variant}")
    values = dict(VARIANT_DEFAULTS[variant], variant=variant)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if (values.get("video_logit") == "embedding" and overrides.get("snippet_hidden") is None
            and variant in EMBEDDING_SNIPPET_HIDDEN):
        values["snippet_hidden"] = EMBEDDING_SNIPPET_HIDDEN[variant]
    if variant in PAPER_VARIANTS and overrides.get("tcc_bottleneck") is None:
        values["tcc_bottleneck"] = max(values["dim"] // 4, 32)  # the published rule: 32 up to dim 128
    return cls(**values)


def uses_motion_map(model_config: Mapping[str, Any] | ModelConfig) -> bool:
    """Whether the model of a config (stored dict or dataclass) computes and uses a MotionMap: MATE and
    paper configs with use_motion_map; never the MIL baseline."""
    if dataclasses.is_dataclass(model_config):
        model_config = dataclasses.asdict(model_config)
    return model_config["variant"] != "mil" and bool(model_config["use_motion_map"])


def uses_difference_features(model_config: Mapping[str, Any] | ModelConfig) -> bool:
    """Whether the model of a config (stored dict or dataclass) projects |x_t - x_{t-1}| beside x: MATE
    and paper configs with use_difference_features; never the MIL baseline (it sees x alone)."""
    if dataclasses.is_dataclass(model_config):
        model_config = dataclasses.asdict(model_config)
    return model_config["variant"] != "mil" and bool(model_config["use_difference_features"])


def topk_count(T: int, ratio: float = VIDEO_TOPK_RATIO) -> int:
    """How many of T snippets make a video's top-k score: k = max(1, floor(ratio * T)), at most T.

    The one rule of the model, the baseline and the top-k MIL loss; ratio 0.125 gives T // 8.
    """
    assert T >= 1 and 0 < ratio <= 1, f"top-k needs T >= 1 and a ratio in (0, 1], got T = {T}, ratio = {ratio}"
    # 1e-9: 0.57 * 100 is 56.99999999999999 in floating point, and means 57
    return max(1, min(T, math.floor(ratio * T + 1e-9)))


def topk_mean(snippet_logits: Tensor, ratio: float = VIDEO_TOPK_RATIO) -> Tensor:
    """[B, T] -> [B]: the mean of the topk_count(T, ratio) largest snippet logits per video (an anomaly
    fills a part of it)."""
    k = topk_count(snippet_logits.shape[1], ratio)
    return snippet_logits.topk(k, dim=1).values.mean(dim=1)


@dataclass
class ModelOutput:
    video_logit: Tensor  # [B]
    snippet_logits: Tensor  # [B, T]
    embedding: Tensor  # [B, E] the video embedding z (triplet loss, UMAP)
    motion: Tensor  # [B, T, H, W] the MotionMap used (zeros when the model uses none)


# --- 1. difference features and the input projection ----------------------------------------------



def check_input(x: Tensor, in_channels: int) -> None:
    assert x.dim() == 5, f"model input must be [B, C, T, H, W], got shape {list(x.shape)}"
    assert x.shape[1] == in_channels, \
        f"model input has C = {x.shape[1]} channels, the model was built for in_channels = {in_channels}"
    assert min(x.shape) >= 1, f"model input has an empty dimension: {list(x.shape)}"


