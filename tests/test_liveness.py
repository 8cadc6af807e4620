"""Every named part of the default models is alive (docs/model.md, "Every part alive"): changing a part's own
input alone (its motion, or the difference features) changes that module's output and what the model
returns, and its ablation switch changes the output too. Checked for fast and base on maps, and for the
temporal parts of the sequence configs (sequences enter as [D, T, 1, 1]: spatial attention and spatial
pooling see one position, so only their temporal halves are checked there).

Alive is structural, not a property of the initial weights: couplings that start at zero (the TCC's motion
gate, the pooling's motion bias) would hide it, and a part whose output cannot depend on its input (heads of
one channel, where the query scale cancels) stays inert at any weights. So each model is taken at a seeded
point of weight space away from its initialisation (every parameter nudged).
"""
import contextlib
import dataclasses
from pathlib import Path

import pytest
import torch

from scripts.model import build_model, config_for_variant
from scripts.models import inputs as inputs_module
from scripts.models.fast_paths import plain_paths
from scripts.option import parse_args
from scripts.training.training import model_config_from_args
from tests.conftest import ROOT, load_script

C = 16  # channels of the test features (the parts do not depend on it)
SEQUENCE_CONFIGS = ("sequence.json", "ucf_i3d.json", "xd_i3d.json", "shanghaitech.json")


def nudged(cfg, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(cfg).double().eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model


def default_configs():
    for variant in ("fast", "base"):
        yield f"{variant}-map", config_for_variant(variant, in_channels=C), (2, C, 8, 3, 3)
    for name in SEQUENCE_CONFIGS:
        args = parse_args(load_script("main.py").get_args_parser(), ["--config", str(ROOT / "configs" / name)])
        yield f"{Path(name).stem}-sequence", model_config_from_args(args, in_channels=C), (2, C, 24, 1, 1)


CASES = list(default_configs())


def features(shape, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    x[:, :, shape[2] // 2:shape[2] // 2 + 2] += 2.0  # an event, so the MotionMap is not flat
    return x


@contextlib.contextmanager
def wrapped(module: torch.nn.Module, method: str, change):
    """module.<method>(*args) runs as the original on change(*args): one part's input altered alone."""
    original = getattr(module, method)
    setattr(module, method, lambda *args: original(*change(*args)))
    try:
        yield
    finally:
        delattr(module, method)


def outputs(model, x):
    with torch.no_grad():
        out = model(x)
    return torch.cat([out.snippet_logits.flatten(), out.video_logit.flatten()]), out.embedding


def differs(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-4) -> bool:
    """A change of more than `rel` of the output's size. At a module's output 1e-4: the attention's eps = 1e-6
    moves an inert query scale by ~1e-6 relative, and that is not what keeps a part alive. At the model's
    output 1e-8 (a module's change is diluted on the way; float64 rounds at ~1e-15)."""
    return ((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item() > rel


def shuffled_within_frames(M: torch.Tensor) -> torch.Tensor:
    """M with its values moved between the positions of each frame: every frame keeps its mean motion."""
    B, T, H, W = M.shape
    return M.reshape(B, T, H * W).roll(1, dims=-1).reshape(B, T, H, W)


@pytest.mark.parametrize("name, cfg, shape", CASES, ids=[c[0] for c in CASES])
def test_every_part_of_the_default_models_is_alive(name, cfg, shape):
    model, x = nudged(cfg), features(shape)
    sequence = shape[3] * shape[4] == 1
    block = model.blocks[0]
    logits, z = outputs(model, x)
    with torch.no_grad():
        M = model.motion_map(x)
        h = model.embed(x)
    assert M.std() > 0
    checked = []

    def alive(part: str, module_changes: bool, changed_out: tuple[torch.Tensor, torch.Tensor], *, into: str):
        """The part's module output changed, and so did the model's logits (or, into="z", its embedding)."""
        new_logits, new_z = changed_out
        assert module_changes, f"{name}: {part} does not change its module's output"
        reached = differs(new_z, z, 1e-8) if into == "z" else differs(new_logits, logits, 1e-8)
        assert reached, f"{name}: {part} does not reach the model's {into}"
        checked.append(part)

    # the MotionMap into the TCC's gate (the frame's mean motion), into the attention's temporal queries
    m = M.mean(dim=(2, 3))
    with torch.no_grad():
        tcc_changes = differs(block.tcc(h, m), block.tcc(h, m + 0.5))
    with wrapped(block.tcc, "forward", lambda h_, m_: (h_, m_ + 0.5)):
        alive("MotionMap -> TCC gate", tcc_changes, outputs(model, x), into="logits")
    with torch.no_grad():
        temporal_changes = differs(block.attention._temporal(h, m), block.attention._temporal(h, m + 0.5))
    with wrapped(block.attention, "_temporal", lambda h_, m_: (h_, m_ + 0.5)):
        alive("MotionMap -> temporal attention queries", temporal_changes, outputs(model, x), into="logits")
    if not sequence:  # the spatial queries: motion moved within each frame, the frames' means kept
        with torch.no_grad():
            spatial_changes = differs(block.attention._spatial(h, M), block.attention._spatial(h, shuffled_within_frames(M)))
        with wrapped(block.attention, "_spatial", lambda h_, M_: (h_, shuffled_within_frames(M_))):
            alive("MotionMap -> spatial attention queries", spatial_changes, outputs(model, x), into="logits")
    # the MotionMap into the pooling: with the top-k video logit, its temporal scores (the motion bias)
    # feed the embedding z only (the triplet loss, the diagnostics); its spatial weights feed the logits
    pool = model.motion_pooling
    with torch.no_grad():
        pool_changes = differs(pool(h, M)[0], pool(h, M * 0.5)[0])
    with wrapped(pool, "forward", lambda h_, M_: (h_, M_ * 0.5)):
        alive("MotionMap -> pooling", pool_changes, outputs(model, x), into="z")
    if not sequence:
        with torch.no_grad():
            spatial_pool_changes = differs(pool(h, M)[1], pool(h, shuffled_within_frames(M))[1])
        with wrapped(pool, "forward", lambda h_, M_: (h_, shuffled_within_frames(M_))):
            alive("MotionMap -> spatial pooling", spatial_pool_changes, outputs(model, x), into="logits")
    # the difference features |x_t - x_{t-1}|, alone (the plain path computes them where they can be changed);
    # a config that switches them off (the I3D configs, docs/benchmarks.md) has no such part
    if cfg.use_difference_features:
        with plain_paths():
            plain_logits, _ = outputs(model, x)
            assert not differs(plain_logits, logits, 1e-9)
            original = inputs_module.difference_features
            inputs_module.difference_features = lambda x_: 2 * original(x_)
            try:
                with torch.no_grad():
                    embed_changes = differs(model.embed(x), h)
                alive("difference features", embed_changes, outputs(model, x), into="logits")
            finally:
                inputs_module.difference_features = original
    else:
        assert not model.embed.differences
        checked.append("difference features: off in this config")
    # the attention and the TCC themselves: their output taken away (the block's input passed on)
    for part in ("attention", "tcc"):
        module = getattr(block, part)
        module.forward = lambda h_, M_: h_
        try:
            alive(part, True, outputs(model, x), into="logits")
        finally:
            del module.forward
    assert len(checked) == (6 if sequence else 8)


@pytest.mark.parametrize("name, cfg, shape", CASES, ids=[c[0] for c in CASES])
def test_each_ablation_switch_changes_the_output(name, cfg, shape):
    """The same seed gives every remaining part the same initial weights (scripts/models/part_seeds.py), so the
    switch alone makes the difference."""
    x = features(shape)
    logits, z = outputs(nudged(cfg), x)
    for switch in ("use_motion_map", "use_difference_features", "use_attention", "use_tcc", "use_motion_pooling"):
        if not getattr(cfg, switch):
            continue  # off in this config already
        off_logits, off_z = outputs(nudged(dataclasses.replace(cfg, **{switch: False})), x)
        assert differs(off_logits, logits, 1e-8), f"{name}: {switch}=False leaves the logits"
