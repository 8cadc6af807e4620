"""Config layering (defaults < --config < CLI) and config-file errors."""
import argparse
import json

import pytest

from scripts.errors import MateError
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
