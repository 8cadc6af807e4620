"""The model's configuration, apart from the modules that read it: MateConfig and MilConfig with their
validation, the variants (fast, base, the published paper_fast / paper_base, the MIL baseline) and their
defaults, and what the model and the published architecture share (ModelOutput, the top-k video logit,
the input check). scripts/model.py builds the modules; scripts/models/paper_model.py the published ones.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import Field, dataclass
from typing import Any, Mapping, Union

from torch import Tensor

from scripts.core.errors import MateError
from scripts.models.fields import IGNORES, SIZES, PARTS, USES, check_fields, flag_name, kind, option, paper_rule

PAPER_VARIANTS = ("paper_fast", "paper_base")  # the published architecture (scripts/models/paper_model.py)
MATE_VARIANTS = ("fast", "base") + PAPER_VARIANTS  # built from a MateConfig
VARIANTS = ("fast", "base", "mil") + PAPER_VARIANTS
TCC_MODES = ("plain", "multiscale", "gating", "multiscale_gating")
VIDEO_LOGITS = ("topk", "embedding")
INPUT_NORMS = ("video", "token")
VIDEO_TOPK_RATIO = 0.125  # the video logit of Mate and MilBaseline: the mean of the top T // 8 snippets


@dataclass
class MateConfig:
    """Hyper-parameters of Mate and PaperMate; plain values only, so a checkpoint can store `asdict(cfg)`.

    The defaults are the `fast` variant. A part switched off is None in the model (skipped). Each field is
    declared once, here (scripts/models/fields.py): its flag, help and checks, and what paper_* do with it.
    """
    variant: str = option("fast", "the variant", choices=MATE_VARIANTS, cli=False)
    in_channels: int = option(192, "C of the features (192 for X3D-L maps, e.g. 2048 for I3D sequences)",
                              minimum=1, cli=False)
    dim: int = option(8, "hidden size of every token", minimum=1, paper=USES)
    num_blocks: int = option(1, "number of TCC + attention + feed-forward blocks", minimum=1, paper=USES)
    # fast: 4 heads of 2 channels; the published 8 on dim 8 leave one channel per head, whose query scale
    # (the attention's motion conditioning) cancels (docs/model.md, "Every part alive"); base: the published 8
    num_heads: int = option(4, "attention heads; dim must divide by it, and each head needs 2 or more channels "
                               "for its queries, and so the motion, to count", minimum=1, group=SIZES, paper=USES)
    motion_window: int = option(2, "the MotionMap compares each token with the mean of this many preceding time "
                                   "steps", minimum=1, paper=USES)
    use_motion_map: bool = option(True, "run every part unconditioned: the MotionMap is not used",
                                  flag="no_motion_map", group=PARTS, paper=USES)
    use_difference_features: bool = option(
        True, "the input projection sees x alone (C channels), not [x, |x_t - x_t-1|]; with --no_motion_map the "
              "model sees no motion input at all (configs/ablations/no_motion.json)",
        flag="no_difference_features", group=PARTS)
    use_attention: bool = option(True, "remove the motion-conditioned attention", flag="no_attention", group=PARTS)
    use_tcc: bool = option(True, "remove the temporal-conditioned convolution", flag="no_tcc", group=PARTS)
    tcc_mode: str = option("multiscale_gating",
                           "temporal context of the TCC: plain (temporal mean), multiscale (also windows of 2 and 4 "
                           "steps), gating (motion-gated residual), or both, the published TCC (plain lost 0.05 "
                           "ROC-AUC on data it was not chosen on, docs/model.md)", choices=TCC_MODES, paper=USES)
    tcc_bottleneck: int = option(8, "channels of the TCC's spatial convolution", minimum=1, group=SIZES, paper=USES)
    use_motion_pooling: bool = option(True, "replace the motion-aware temporal pooling by plain mean/max pooling",
                                      flag="no_motion_pooling", group=PARTS)
    use_temporal_smoothing: bool = option(False, "add a learnable depthwise temporal convolution (3 steps) before "
                                                 "the pooling", group=PARTS)
    num_queries: int = option(8, "learned queries of the motion-aware temporal pooling; the embedding has "
                                 "num_queries x dim values", minimum=1, paper=USES)
    spatial_window: int = option(0, "spatial attention within w x w windows of a frame; 0 = the whole frame "
                                    "(the published windows put their tokens back in the wrong places)", minimum=0)
    ff_mult: int = option(4, "feed-forward expansion", minimum=1, group=SIZES)
    head_hidden: int = option(32, "hidden units of the video head of --video_logit embedding, 0 = one linear layer",
                              minimum=0, group=SIZES, paper=IGNORES)
    snippet_hidden: int = option(256, "hidden units of the snippet head, 0 = one linear layer", minimum=0,
                                 group=SIZES, paper=IGNORES)
    dropout: float = option(0.0, "dropout in the model", minimum=0.0, below=1.0, paper=USES)
    input_norm: str = option("video", "normalisation of [x, |dx|] before the input projection: video (statistics "
                                      "over the whole video, better, see docs/model.md) or token (the published "
                                      "per-token LayerNorm)", choices=INPUT_NORMS, paper_value="token")
    # with topk, z still feeds the triplet loss and the diagnostics; it conditions nothing else
    video_logit: str = option("topk", "topk: the video logit is the mean of the top-k (T/8) snippet logits "
                                      "(better, see docs/model.md); embedding: the published head on the pooled "
                                      "embedding z", choices=VIDEO_LOGITS, paper_value="embedding")

    def __post_init__(self):
        check_fields(self)
        if self.dim % self.num_heads:
            raise MateError(f"model config: num_heads must be a divisor of dim = {self.dim}, got {self.num_heads}")
        if self.variant in PAPER_VARIANTS:
            for key, value in paper_fixed(type(self)).items():
                if getattr(self, key) != value:
                    raise MateError(f"model config: {key} must be {value!r} for {self.variant} (fixed by the "
                                    f"published architecture), got {getattr(self, key)!r}")


@dataclass
class MilConfig:
    """Hyper-parameters of the MIL baseline (Sultani et al., 2018): a 512-32-1 MLP on every snippet.

    It has no MotionMap, attention, TCC or motion pooling, so none of MATE's options exist here.
    """
    variant: str = option("mil", "the variant", choices=("mil",), cli=False)
    in_channels: int = option(192, "C of the features", minimum=1, cli=False)
    hidden: int = option(512, "first FC layer of the MIL baseline (Sultani et al.: 512)", minimum=1,
                         flag="mil_hidden", group=SIZES)
    embed: int = option(32, "second FC layer of the MIL baseline; the embedding is its temporal mean "
                            "(Sultani et al.: 32)", minimum=1, flag="mil_embed", group=SIZES)
    # Sultani et al. used dropout 0.6; here it stops the MLP from learning at all (docs/model.md)
    dropout: float = option(0.0, "dropout in the model", minimum=0.0, below=1.0)

    def __post_init__(self):
        check_fields(self)


ModelConfig = Union[MateConfig, MilConfig]


def config_class(variant: str) -> type:
    """MilConfig for mil, MateConfig for the others (an unknown variant is a MateError)."""
    if variant not in VARIANTS:
        raise MateError(f"model config: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return MilConfig if variant == "mil" else MateConfig


def config_fields(variant: str) -> tuple[str, ...]:
    """The keys a stored config of `variant` has, in order."""
    return tuple(f.name for f in dataclasses.fields(config_class(variant)))


def paper_fixed(cls: type) -> dict[str, Any]:
    """The fields paper_* cannot change, with the published architecture's value (fields.paper_rule)."""
    return {f.name: value for f in dataclasses.fields(cls) for rule, value in [paper_rule(f)] if rule == "fixed"}


# Each MATE variant's departures from the MateConfig defaults (which are fast's). Sizes are tuned to
# the published parameter counts on 192-channel input, about 8.5k and 40k: with the default top-k
# video logit the budget of the published video head goes to the snippet head; with
# video_logit="embedding" the snippet head shrinks back (EMBEDDING_SNIPPET_HIDDEN) to keep the count.
# The published Model(dim=8) and Model(dim=32) (paper_fast, paper_base) add what their architecture fixes
# (paper_fixed): heads 8, multiscale TCC with motion gating, dropout 0.4 (its main.py's --dropout_rate
# default); the TCC bottleneck follows dim (config_for_variant).
VARIANT_DEFAULTS: dict[str, dict] = {
    "fast": {},
    "base": dict(dim=32, num_heads=8, tcc_bottleneck=16, head_hidden=0, snippet_hidden=80),
    "mil": {},  # MilConfig's defaults
    "paper_fast": dict(dim=8, num_heads=8, tcc_mode="multiscale_gating", dropout=0.4),
    "paper_base": dict(dim=32, num_heads=8, tcc_mode="multiscale_gating", dropout=0.4),
}
EMBEDDING_SNIPPET_HIDDEN = {"fast": 16, "base": 16}


def config_for_variant(variant: str, **overrides) -> ModelConfig:
    """The variant's config with `overrides` applied; an override of None keeps the variant's value
    (so CLI flags defaulting to None can be passed straight through). A key the variant's config
    lacks (e.g. dim for mil) is a MateError, None or not."""
    cls = config_class(variant)
    unknown = sorted(set(overrides) - set(config_fields(variant)))
    if unknown:
        raise MateError(f"model config: unknown key(s) {', '.join(unknown)} for variant {variant}")
    values = dict(paper_fixed(cls) if variant in PAPER_VARIANTS else {}, **VARIANT_DEFAULTS[variant], variant=variant)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if (values.get("video_logit") == "embedding" and overrides.get("snippet_hidden") is None
            and variant in EMBEDDING_SNIPPET_HIDDEN):
        values["snippet_hidden"] = EMBEDDING_SNIPPET_HIDDEN[variant]
    if variant in PAPER_VARIANTS and overrides.get("tcc_bottleneck") is None:
        values["tcc_bottleneck"] = max(values["dim"] // 4, 32)  # the published rule: 32 up to dim 128
    return cls(**values)


@dataclass(frozen=True)
class ModelFlag:
    """A command-line model option derived from a config field (scripts/option.py builds it)."""
    name: str  # the flag without --, also the config-file key and the key in the run's options
    field: Field  # the field it sets, in every config class that has a field of that name
    variants: tuple[str, ...]  # the variants whose config has the field


def model_flags() -> list[ModelFlag]:
    """Every model flag, derived from the fields of MateConfig and MilConfig (fields a flag sets only)."""
    flags: dict[str, ModelFlag] = {}
    for variant in VARIANTS:
        for f in dataclasses.fields(config_class(variant)):
            name = flag_name(f)
            if name is None:
                continue
            known = flags.get(name)
            assert known is None or known.field.name == f.name, f"flag --{name} would set two fields"
            flags[name] = ModelFlag(name, f, (known.variants if known else ()) + (variant,))
    return list(flags.values())


def flag_value(flag: ModelFlag, given: Any) -> Any:
    """The field value a flag's parsed value sets; None when the flag was not given (the variant's value)."""
    if kind(flag.field) == "bool":
        return (not flag.field.default) if given else None  # a switch: given, it turns the default over
    return given


def overrides_from_options(variant: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The config values the model flags in `options` (flag name -> parsed value) set for `variant`; a flag
    given for a variant whose config has no such field is a MateError (never silently dropped)."""
    overrides = {}
    for flag in model_flags():
        value = flag_value(flag, options.get(flag.name))
        if variant in flag.variants:
            overrides[flag.field.name] = value
        elif value is not None:
            applies = [f"--{g.name}" for g in model_flags() if variant in g.variants]
            owner = "MATE's parts" if variant == "mil" else "the MIL baseline"
            what = "the MIL baseline" if variant == "mil" else variant
            raise MateError(f"--{flag.name}: an option of {owner}; --model_variant {variant} ({what}) has none "
                            f"of them (of the model options only {', '.join(applies)} apply to it)")
    return overrides


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


