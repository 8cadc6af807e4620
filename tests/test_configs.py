"""Every shipped config loads with main.py's parser, and each ablation file does what its row declares:
removes a part, adds one, or sets a value."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from scripts.core.errors import MateError
from scripts.model import build_model, count_parameters
from scripts.option import parse_args
from scripts.training.training import loss_config_from_args, model_config_from_args
from tests.conftest import ROOT, load_script

main_script = load_script("main.py")

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ABLATIONS = sorted((CONFIGS / "ablations").glob("*.json"))


def resolved(path: Path):
    args = parse_args(main_script.get_args_parser(), ["--config", str(path)])
    return args, model_config_from_args(args, in_channels=192)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.json")) + ABLATIONS, ids=lambda p: p.name)
def test_config_loads(path):
    args, cfg = resolved(path)
    assert args.model_variant in ("fast", "base", "mil") and cfg.in_channels == 192
    assert json.loads(path.read_text())["_comment"]


@pytest.mark.parametrize("name", ["i3d.json", "ucf_i3d.json", "xd_i3d.json", "shanghaitech.json"])
def test_the_i3d_configs_hold_the_chosen_values(name):
    """Chosen on the sequence regime in the peers' formats (docs/benchmarks.md, "The I3D configs"): fast without
    the difference features, selection from epoch 6, crops averaged, the sequence losses; they share i3d.json."""
    args, cfg = resolved(CONFIGS / name)
    assert (cfg.variant, cfg.use_difference_features, cfg.use_motion_map) == ("fast", False, True)
    assert (args.select_from_epoch, args.crop_mode, args.num_segments, args.lambda_topk) == (6, "mean", 32, 1.0)
    assert args.max_epoch == (60 if name == "xd_i3d.json" else 150)
    assert name == "i3d.json" or json.loads((CONFIGS / name).read_text())["extends"] == "i3d.json"


def test_variant_sizes():
    fast = count_parameters(build_model(resolved(CONFIGS / "fast.json")[1]))
    base = count_parameters(build_model(resolved(CONFIGS / "base.json")[1]))
    assert abs(fast - 8500) / 8500 < 0.15 and abs(base - 40000) / 40000 < 0.15


def parts(model: torch.nn.Module) -> set[str]:
    """The model's parts by name (a part switched off is None, so its name is gone)."""
    return {name for name, _ in model.named_modules() if name}


def loss_terms(args) -> set[str]:
    return {k for k, v in dataclasses.asdict(loss_config_from_args(args)).items() if k.startswith("lambda_") and v > 0}


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_row_does_what_it_declares(path):
    """Each row changes exactly the fields its file names against the config it extends, and does what its
    "_row" declares: a removal takes parts, parameters or a loss term away, an addition puts them in, a set
    row changes a value (the published one, or a departure)."""
    from scripts.evaluation.ablation_rows import read_row
    from scripts.models.config import model_flags
    from scripts.option import EXTENDS

    row = read_row(path)
    raw = json.loads(path.read_text())
    base_args, base_cfg = resolved(path.parent / raw[EXTENDS])
    args, cfg = resolved(path)
    fields = {f.name: f.field.name for f in model_flags()}
    named = {fields[k] for k in raw if k in fields}
    base_dict, dict_ = dataclasses.asdict(base_cfg), dataclasses.asdict(cfg)
    changed = {k for k in base_dict if base_dict[k] != dict_[k]}
    # the embedding head's variant default shrinks the snippet head with it (config_for_variant)
    assert changed - named <= ({"snippet_hidden"} if "video_logit" in named else set()) and named <= changed
    base, ablated = build_model(base_cfg), build_model(cfg)
    fewer = (parts(ablated) < parts(base) or count_parameters(ablated) < count_parameters(base)
             or loss_terms(args) < loss_terms(base_args))
    more = (parts(ablated) > parts(base) or count_parameters(ablated) > count_parameters(base)
            or loss_terms(args) > loss_terms(base_args))
    if row.change == "remove":
        assert fewer and not parts(ablated) > parts(base), (parts(base) - parts(ablated), count_parameters(ablated))
    elif row.change == "add":
        assert more and not parts(ablated) < parts(base), (parts(ablated) - parts(base), count_parameters(ablated))
    else:
        assert row.change == "set" and (changed or loss_terms(args) != loss_terms(base_args))


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_builds_its_component(path):
    """What the rows build, part by part (beyond their declared change)."""
    full_args, full_cfg = resolved(CONFIGS / "fast.json")
    args, cfg = resolved(path)
    ablated = build_model(cfg)
    name = path.stem
    if name == "no_triplet":
        assert loss_config_from_args(args).lambda_triplet == 0 < loss_config_from_args(full_args).lambda_triplet
    elif name in ("input_norm_token", "video_logit_embedding"):  # a published choice put back
        assert (cfg.input_norm, cfg.video_logit) == (("token", "topk") if name == "input_norm_token"
                                                     else ("video", "embedding"))
        assert (ablated.video_head is not None) == (name == "video_logit_embedding")
    elif name in ("num_heads_8", "dropout_04", "tcc_bottleneck_32"):  # a published value put back
        attention, tcc = ablated.blocks[0].attention, ablated.blocks[0].tcc
        dropouts = {m.p for m in ablated.modules() if isinstance(m, torch.nn.Dropout)}
        assert (attention.heads, tcc.conv.out_channels, dropouts) == {
            "num_heads_8": (8, 8, {0.0}), "dropout_04": (4, 8, {0.4}), "tcc_bottleneck_32": (4, 32, {0.0})}[name]
    elif name == "mil_dropout":
        assert (cfg.variant, cfg.dropout, ablated.dropout.p) == ("mil", 0.6, 0.6)
    elif name.startswith("tcc_"):
        mode = name[len("tcc_"):]
        tcc = ablated.blocks[0].tcc
        # the built TCC has the row's context scales and gate, not only the config's word for them
        assert (tcc.mode, tcc.scales, tcc.gate is not None) == (mode, (2, 4) if "multiscale" in mode else (),
                                                                 mode.endswith("gating"))
    elif name in ("no_motion_map", "no_motion"):
        torch.manual_seed(0)
        x = torch.randn(2, 192, 16, 4, 4)
        ablated.eval()
        with torch.no_grad():
            a = ablated(x, motion=torch.zeros(2, 16, 4, 4))
            b = ablated(x, motion=torch.rand(2, 16, 4, 4))
            assert torch.equal(a.video_logit, b.video_logit)  # the motion input no longer changes the output
            assert ablated.motion_map is None and torch.equal(ablated(x).motion, torch.zeros(2, 16, 4, 4))
            # the difference features: kept by no_motion_map (they still carry motion), gone in no_motion,
            # whose input projection takes the C channels of x alone
            C = 192 if name == "no_motion" else 2 * 192
            assert ablated.embed.differences == (name == "no_motion_map")
            assert ablated.embed.proj.weight.shape == (cfg.dim, C)
            # no motion input left: permuting the time steps leaves the video logit (to float32 rounding)
            perm = torch.randperm(16)
            change = (ablated(x[:, :, perm]).video_logit - a.video_logit).abs().max()
            assert (change < 1e-5) if name == "no_motion" else (change > 1e-4), change
        # the MotionMap has no parameters; the difference half of the projection and its norm had 192 (8 + 2);
        # no_motion's plain TCC has neither the multiscale context's nor the gate's weights
        removed = 192 * (cfg.dim + 2) if name == "no_motion" else 0
        reference = build_model(dataclasses.replace(full_cfg, tcc_mode=cfg.tcc_mode))
        assert count_parameters(ablated) == count_parameters(reference) - removed


def test_no_difference_features_only_for_mates_own_variants():
    """paper_* always project the differences (the published code); mil has no input projection."""
    for variant, match in (("paper_fast", "use_difference_features must be True for paper_fast"),
                           ("mil", "--no_difference_features: an option of MATE's parts")):
        args = parse_args(main_script.get_args_parser(), ["--model_variant", variant, "--no_difference_features"])
        with pytest.raises(MateError, match=match):
            model_config_from_args(args, in_channels=192)
    args = parse_args(main_script.get_args_parser(), ["--model_variant", "base", "--no_difference_features"])
    cfg = model_config_from_args(args, in_channels=192)
    assert not cfg.use_difference_features and cfg.use_motion_map


def test_ablation_configs_hold_only_what_they_change(tmp_path):
    """Each ablation config extends configs/fast.json (or mil.json) and changes one thing: resolved, it
    equals its base plus its own keys, and no key repeats the base's value."""
    from scripts.option import EXTENDS, load_config
    parser = load_script("main.py").get_args_parser()
    for path in sorted((ROOT / "configs" / "ablations").glob("*.json")):
        raw = json.loads(path.read_text())
        base_path = path.parent / raw[EXTENDS]
        base = load_config(base_path, parser)
        own = {k: v for k, v in raw.items() if not k.startswith("_") and k != EXTENDS}
        assert own and all(base.get(k) != v for k, v in own.items()), path.name
        assert load_config(path, parser) == {**base, **own}, path.name
    (tmp_path / "a.json").write_text(json.dumps({"extends": "b.json"}))
    (tmp_path / "b.json").write_text(json.dumps({"extends": "a.json"}))
    with pytest.raises(MateError, match="goes round in a cycle"):
        load_config(tmp_path / "a.json", parser)
