"""Every shipped config loads with main.py's parser, and each ablation file removes its component."""
import json
from pathlib import Path

import pytest
import torch

from scripts.model import build_model, count_parameters
from scripts.option import parse_args
from scripts.training import loss_config_from_args, model_config_from_args
from tests.conftest import load_script

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


def test_variant_sizes():
    fast = count_parameters(build_model(resolved(CONFIGS / "fast.json")[1]))
    base = count_parameters(build_model(resolved(CONFIGS / "base.json")[1]))
    assert abs(fast - 8500) / 8500 < 0.15 and abs(base - 40000) / 40000 < 0.15


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_removes_its_component(path):
    full_args, full_cfg = resolved(CONFIGS / "fast.json")
    args, cfg = resolved(path)
    full, ablated = build_model(full_cfg), build_model(cfg)
    name = path.stem
    if name == "no_triplet":
        assert loss_config_from_args(args).lambda_triplet == 0 < loss_config_from_args(full_args).lambda_triplet
        return
    if name.startswith("tcc_"):
        mode = name[len("tcc_"):]
        tcc = ablated.blocks[0].tcc
        # the built TCC has the row's context scales and gate, not only the config's word for them
        assert (tcc.mode, tcc.scales, tcc.gate is not None) == (mode, (2, 4) if "multiscale" in mode else (),
                                                                 mode.endswith("gating"))
        return
    if name == "no_motion_map":
        torch.manual_seed(0)
        x = torch.randn(2, 192, 16, 4, 4)
        ablated.eval()
        a = ablated(x, motion=torch.zeros(2, 16, 4, 4)).video_logit
        b = ablated(x, motion=torch.rand(2, 16, 4, 4)).video_logit
        assert torch.equal(a, b)  # the motion input no longer changes the output
        return
    assert count_parameters(ablated) < count_parameters(full)
