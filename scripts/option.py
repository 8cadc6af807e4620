"""Shared command-line options and JSON config layering (DESIGN §1).

Options come in three layers, later wins: the parser's defaults < `--config file.json` < explicit
CLI flags. Each script builds its parser from the `get_*_parser(add_help=False)` pieces here through
`parents=[...]` (as DINO does) and adds only its own flags; `parse_args` applies the layering.
A config file may only hold keys the script knows, with values of the flag's type; keys starting
with `_` are comments (`"_comment": "ablation: no motion map"`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from scripts.errors import MateError


def get_config_parser(add_help: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=add_help)
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON file of option values (keys = flag names without '--'); it overrides "
                             "the defaults and is overridden by flags given on the command line "
                             "(default: none)")
    return parser


def get_runtime_parser(add_help: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=add_help)
    group = parser.add_argument_group("runtime")
    group.add_argument("--seed", type=int, default=0,
                       help="random seed for numpy, torch and batch order; same seed, same numbers on "
                            "CPU (default: 0)")
    group.add_argument("--device", type=str, default="auto",
                       help="auto (CUDA if available, else CPU), cpu, cuda or cuda:<i> (default: auto)")
    group.add_argument("--num_workers", type=int, default=0,
                       help="worker processes for loading features into memory; 0 loads in the main "
                            "process (default: 0)")
    return parser


def get_data_parser(add_help: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=add_help)
    group = parser.add_argument_group("features")
    group.add_argument("--num_segments", type=int, default=32,
                       help="training resamples sequence features [T, D] to this many time steps by "
                            "averaging uniform chunks; map features [C, T, H, W] keep their T; test "
                            "uses the full sequence (default: 32)")
    group.add_argument("--crop_mode", choices=("mean", "space"), default="mean",
                       help="for [T, K, D] multi-crop features: 'mean' averages the K crops, 'space' "
                            "lays them out as K spatial positions (default: mean)")
    group.add_argument("--cache_dtype", choices=("float32", "float16"), default="float32",
                       help="dtype of the in-memory feature cache; float16 halves memory (about 1 GB "
                            "for UCF-Crime's 1,610 training maps) at a small precision cost "
                            "(default: float32)")
    group.add_argument("--frames_per_snippet", type=int, default=16,
                       help="frames covered by one snippet when a feature file has no sidecar JSON "
                            "(default: 16)")
    return parser


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}


def _check_scalar(value: Any, action: argparse.Action, key: str, source: Path) -> Any:
    def fault(expected: str) -> MateError:
        return MateError(f"{source}: key '{key}' must be {expected}, got {json.dumps(value)}")

    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise fault("true or false")
        return value
    if value is None and action.default is None:
        return None
    kind = action.type
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fault("an integer")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fault("a number")
        value = float(value)
    elif not isinstance(value, str):
        raise fault("a string")
    elif kind is not None:
        value = kind(value)
    if action.choices is not None and value not in action.choices:
        raise fault("one of " + ", ".join(map(str, action.choices)))
    return value


def load_config(path: str | Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Read a JSON config and check every key and value against `parser`'s options."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise MateError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MateError(f"{path}: cannot read config ({exc})") from None
    except json.JSONDecodeError as exc:
        raise MateError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise MateError(f"{path}: a config must be a JSON object of option values")
    actions = _actions(parser)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue  # comments
        action = actions.get(key.replace("-", "_"))
        if action is None:
            raise MateError(f"{path}: unknown key '{key}' (not an option of this script)")
        if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 0):
            if not isinstance(value, list):
                raise MateError(f"{path}: key '{key}' must be a list, got {json.dumps(value)}")
            values[action.dest] = [_check_scalar(v, action, key, path) for v in value]
        else:
            values[action.dest] = _check_scalar(value, action, key, path)
    return values


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse with layering: defaults < the `--config` file's values < explicit flags."""
    pre, _ = get_config_parser().parse_known_args(argv)
    if pre.config is not None:
        parser.set_defaults(**load_config(pre.config, parser))
    return parser.parse_args(argv)


def options_to_dict(args: argparse.Namespace) -> dict[str, Any]:
    """Resolved options as JSON-ready plain data (paths become strings)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())}
