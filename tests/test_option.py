"""Config layering (defaults < --config < CLI) and config-file errors."""
import argparse
import json

import pytest

from scripts.core.errors import MateError
from scripts.option import (get_config_parser, get_data_parser, get_runtime_parser, options_to_dict,
                            parse_args)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(parents=[get_config_parser(), get_runtime_parser(), get_data_parser()])
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--exp_name", type=str, default="exp")
    parser.add_argument("--no_triplet", action="store_true")
    parser.add_argument("--dims", type=int, nargs="+", default=[8])
    return parser


def write(tmp_path, obj, name="c.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return str(path)


def test_defaults_without_config():
    args = parse_args(make_parser(), [])
    assert (args.lr, args.seed, args.num_segments, args.crop_mode, args.no_triplet) == (0.002, 0, 32, "mean", False)


def test_layering_config_then_cli(tmp_path):
    cfg = write(tmp_path, {"lr": 0.01, "seed": 3, "no_triplet": True, "crop_mode": "space", "dims": [4, 8],
                           "_comment": "ablation row"})
    args = parse_args(make_parser(), ["--config", cfg])
    assert (args.lr, args.seed, args.no_triplet, args.crop_mode, args.dims) == (0.01, 3, True, "space", [4, 8])
    args = parse_args(make_parser(), ["--config", cfg, "--lr", "0.5", "--seed", "9"])
    assert (args.lr, args.seed, args.no_triplet) == (0.5, 9, True)
    args = parse_args(make_parser(), ["--seed", "9", "--config", cfg])  # flag order does not matter
    assert args.seed == 9


def test_int_accepted_for_float(tmp_path):
    args = parse_args(make_parser(), ["--config", write(tmp_path, {"lr": 1})])
    assert args.lr == 1.0 and isinstance(args.lr, float)


@pytest.mark.parametrize("obj, fault", [
    ({"learning_rate": 0.1}, "unknown key 'learning_rate'"),
    ({"seed": "3"}, "key 'seed' must be an integer"),
    ({"seed": 1.5}, "key 'seed' must be an integer"),
    ({"seed": True}, "key 'seed' must be an integer"),
    ({"lr": "fast"}, "key 'lr' must be a number"),
    ({"no_triplet": 1}, "key 'no_triplet' must be true or false"),
    ({"crop_mode": "median"}, "key 'crop_mode' must be one of mean, space"),
    ({"exp_name": 5}, "key 'exp_name' must be a string"),
    ({"dims": 4}, "key 'dims' must be a list"),
    ([1, 2], "must be a JSON object"),
    ("{not json", "not valid JSON"),
])
def test_config_errors_name_file_and_key(tmp_path, obj, fault):
    cfg = write(tmp_path, obj)
    with pytest.raises(MateError, match=fault) as err:
        parse_args(make_parser(), ["--config", cfg])
    assert str(err.value).startswith(cfg)


def test_missing_config(tmp_path):
    with pytest.raises(MateError, match="config file not found"):
        parse_args(make_parser(), ["--config", str(tmp_path / "nope.json")])


def test_options_serialise_to_json(tmp_path):
    args = parse_args(make_parser(), ["--config", write(tmp_path, {"seed": 2})])
    resolved = options_to_dict(args)
    assert json.loads(json.dumps(resolved)) == resolved
    assert resolved["config"].endswith("c.json") and resolved["seed"] == 2


def test_every_model_field_is_a_flag_and_a_config_key(tmp_path):
    import dataclasses

    from scripts.model import INPUT_NORMS, TCC_MODES, VIDEO_LOGITS, MateConfig, MilConfig
    from scripts.option import get_model_parser
    from scripts.training.training import model_config_from_args

    parser = argparse.ArgumentParser(parents=[get_config_parser(), get_model_parser()])
    dests = {a.dest for a in parser._actions}
    # the spellings users' scripts depend on (a field added at run time: tests/test_fields.py)
    for cls, spelled in ((MateConfig, {"use_motion_map": "no_motion_map", "use_attention": "no_attention",
                                       "use_tcc": "no_tcc", "use_motion_pooling": "no_motion_pooling",
                                       "use_difference_features": "no_difference_features"}),
                         (MilConfig, {"hidden": "mil_hidden", "embed": "mil_embed"})):
        for field in dataclasses.fields(cls):
            if field.name not in ("variant", "in_channels"):  # the variant's name, and the features' C
                assert spelled.get(field.name, field.name) in dests, field.name
    choices = {a.dest: a.choices for a in parser._actions}
    assert (choices["tcc_mode"], choices["video_logit"], choices["input_norm"]) == (TCC_MODES, VIDEO_LOGITS, INPUT_NORMS)
    cfg = write(tmp_path, {"num_heads": 2, "ff_mult": 2, "tcc_bottleneck": 4, "snippet_hidden": 8})
    args = parse_args(parser, ["--config", cfg, "--head_hidden", "0", "--model_variant", "base"])
    mc = model_config_from_args(args, in_channels=192)
    assert (mc.dim, mc.num_heads, mc.ff_mult, mc.tcc_bottleneck, mc.snippet_hidden, mc.head_hidden) == (32, 2, 2, 4, 8, 0)


@pytest.mark.parametrize("script", ["test.py", "test2.py", "aggregate.py"])
def test_shared_flags_have_one_default(script):
    from tests.conftest import load_script

    parser = load_script(script).get_args_parser()
    actions = {a.dest: a for a in parser._actions}
    assert actions["n_boot"].default == 2000
    assert ("no_progress" in actions) == (script != "aggregate.py")


def test_parallel_loading_gives_the_same_cache(tmp_path):
    import numpy as np
    import torch

    from scripts.dataset import FeatureDataset
    from scripts.data.manifest import VideoEntry

    rng = np.random.default_rng(0)
    entries = []
    for i in range(9):
        path = tmp_path / f"v{i}.npy"
        np.save(path, rng.random((12, 4, 2, 2)).astype(np.float32))
        entries.append(VideoEntry(path=path, label=i % 2, cls="Normal" if i % 2 == 0 else "Abuse"))
    serial = FeatureDataset(entries, progress=False)
    threaded = FeatureDataset(entries, progress=False, workers=3)
    x0, _ = serial.batch(list(range(9)))
    x1, _ = threaded.batch(list(range(9)))
    assert torch.equal(x0, x1) and torch.equal(x0[4], torch.from_numpy(np.load(tmp_path / "v4.npy")))
    with pytest.raises(MateError, match="--num_workers: must be 0 or more"):
        FeatureDataset(entries, progress=False, workers=-1)
