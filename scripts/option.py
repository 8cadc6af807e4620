"""Shared command-line options and JSON config layering (docs/design.md §1).

Options come in three layers, later wins: the parser's defaults < `--config file.json` < explicit
CLI flags. Each script builds its parser from the `get_*_parser(add_help=False)` pieces here through
`parents=[...]` (as DINO does) and adds only its own flags; `parse_args` applies the layering.
A config file may only hold keys the script knows, with values of the flag's type; keys starting
with `_` are comments (`"_comment": "ablation: no motion map"`); `"extends": "../fast.json"` starts from
another config's values (relative to the file), so an ablation config holds only what it changes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Sequence

from scripts.core.cli import OneLineParser, finite_float, seed_int
from scripts.core.errors import MateError
from scripts.core.fileio import read_text


def get_config_parser(add_help: bool = False) -> argparse.ArgumentParser:
    parser = OneLineParser(add_help=add_help)
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON file of option values (keys = flag names without '--'); it overrides "
                             "the defaults and is overridden by flags given on the command line "
                             "(default: none)")
    return parser


def get_runtime_parser(add_help: bool = False, *, loading: bool = True, plots: bool = False) -> argparse.ArgumentParser:
    """Seed, device, progress bars, (`loading`) the feature-loading threads and (`plots`) --no_plots."""
    parser = OneLineParser(add_help=add_help)
    group = parser.add_argument_group("runtime")
    group.add_argument("--seed", type=seed_int, default=0,
                       help="random seed for numpy, torch and batch order; same seed, same numbers on "
                            "CPU (default: 0)")
    group.add_argument("--device", type=str, default="auto",
                       help="auto (CUDA if available, else CPU), cpu, cuda or cuda:<i> (default: auto)")
    if loading:
        group.add_argument("--num_workers", type=int, default=0,
                           help="threads that read the feature files into memory in parallel; 0 reads them "
                                "in the main thread; more helps on network file systems (default: 0)")
    group.add_argument("--threads", type=int, default=0,
                       help="CPU threads of torch's operators; 0 = auto: the cores idle at the start (all on "
                            "a quiet machine, one beside other busy jobs; main.py chooses again after every "
                            "epoch), or OMP_NUM_THREADS where it is set (default: 0)")
    group.add_argument("--no_progress", action="store_true", help="no progress bars (default: off)")
    if plots:
        group.add_argument("--no_plots", action="store_true",
                           help="write no PNG figures (curves per epoch, ROC/PR, per-video frame scores); the "
                                "CSV and JSON files are written as always, e.g. for a study of many runs "
                                "(default: off)")
    return parser


def get_bootstrap_parser(add_help: bool = False) -> argparse.ArgumentParser:
    """The bootstrap's size, shared by test.py, test2.py and aggregate.py."""
    parser = OneLineParser(add_help=add_help)
    parser.add_argument("--n_boot", type=int, default=2000,
                        help="bootstrap replicates of the 95%% CIs and paired comparisons; more replicates, "
                             "steadier interval ends (default: 2000)")
    return parser


def get_data_parser(add_help: bool = False) -> argparse.ArgumentParser:
    parser = OneLineParser(add_help=add_help)
    group = parser.add_argument_group("features")
    group.add_argument("--num_segments", type=int, default=32,
                       help="training resamples sequence features [T, D] to this many time steps by "
                            "averaging uniform chunks; map features [C, T, H, W] keep their T; test "
                            "uses the full sequence (default: 32)")
    group.add_argument("--crop_mode", choices=("mean", "space", "score_mean"), default="mean",
                       help="for [T, K, D] multi-crop files (RTFM's [T, 10, 2048]): 'mean' averages the K crops' "
                            "features, 'space' lays them out as K spatial positions, 'score_mean' is RTFM's rule: "
                            "each crop scored on its own and the scores averaged over the crops, in training and "
                            "at test (scripts/models/crop_scoring.py; not the extractor's --crops 1|3|10) "
                            "(default: mean)")
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
    if kind in (int, seed_int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fault("an integer")
        if kind is seed_int and not 0 <= value < 2**32:
            raise fault("a seed in [0, 2**32 - 1]")
    elif kind in (float, finite_float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fault("a number")
        if not math.isfinite(value):
            raise fault("a finite number")
        value = float(value)
    elif not isinstance(value, str):
        raise fault("a string")
    elif kind is not None:
        value = kind(value)
    if action.choices is not None and value not in action.choices:
        raise fault("one of " + ", ".join(map(str, action.choices)))
    return value


EXTENDS = "extends"  # a config's key naming the config it changes, relative to its own folder


def load_config(path: str | Path, parser: argparse.ArgumentParser, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a JSON config and check every key and value against `parser`'s options. With
    `"extends": "../fast.json"` its values start from that config's (recursively), so an ablation config
    holds only what it changes."""
    path = Path(path)
    if path.resolve() in _seen:
        raise MateError(f"{path}: '{EXTENDS}' goes round in a cycle ({' -> '.join(str(p) for p in _seen)})")
    try:
        raw = json.loads(read_text(path, "config file"))
    except json.JSONDecodeError as exc:
        raise MateError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise MateError(f"{path}: a config must be a JSON object of option values")
    actions = _actions(parser)
    values: dict[str, Any] = {}
    if EXTENDS in raw:
        base = path.parent / raw[EXTENDS] if isinstance(raw[EXTENDS], str) and raw[EXTENDS].strip() else None
        if base is None or not base.is_file():
            raise MateError(f"{path}: '{EXTENDS}' must name a config file, got {json.dumps(raw[EXTENDS])}"
                            + (f" ({base} is not a file)" if base is not None else ""))
        values.update(load_config(base, parser, _seen + (path.resolve(),)))
    for key, value in raw.items():
        if key.startswith("_") or key == EXTENDS:
            continue  # comments; the base config, read above
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
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())
            if not k.startswith("upstream_")}  # aliases unresolved by a caller (scripts/evaluation/upstream_flags.py)


def get_model_parser(add_help: bool = False) -> argparse.ArgumentParser:
    """The model's options (docs/design.md §3), one per config field (scripts/models/fields.py): the flag, its
    type, choices, help and group come from the field's declaration, and its default is the variant's."""
    # the one list of each set of names (this imports torch: model parsers only)
    from scripts.models.config import PAPER_VARIANTS, VARIANTS, config_for_variant, model_flags
    from scripts.models.fields import MODEL, PARTS, SIZES, USES, kind, paper_rule

    flags = model_flags()
    built = {v: config_for_variant(v) for v in VARIANTS}

    def default_text(flag) -> str:
        values = {v: getattr(built[v], flag.field.name) for v in flag.variants}
        fixed = [v for v in PAPER_VARIANTS if v in flag.variants and paper_rule(flag.field)[0] == "fixed"]
        also = f"; fixed for {'/'.join(fixed)}" if fixed else ""
        if kind(flag.field) == "bool":
            return "off" + also
        if len(set(map(repr, values.values()))) == 1:
            shown = next(iter(values.values()))
            return (f"{shown} for every variant" if len(values) > 1 else str(shown)) + also
        return "the variant's: " + ", ".join(f"{v} {x}" for v, x in values.items()) + also

    paper_uses = [f"--{f.name}" for f in flags if "paper_fast" in f.variants and paper_rule(f.field)[0] == USES]
    mil_uses = [f"--{f.name}" for f in flags if "mil" in f.variants]
    parser = OneLineParser(add_help=add_help)
    groups = {MODEL: parser.add_argument_group("model"),
              SIZES: parser.add_argument_group("sizes (default: the variant's; fast and base are tuned to about "
                                               "8.5k and 40k parameters on 192 channels)"),
              PARTS: parser.add_argument_group("parts (each switches one part off, or on)")}
    groups[MODEL].add_argument(
        "--model_variant", choices=VARIANTS, default="fast",
        help="fast: dim 8, about 8.5k parameters; base: dim 32, about 40k; mil: the classic MIL ranking MLP on "
             "snippets, the in-repo baseline (of the options below only " + ", ".join(mil_uses) +
             " apply to it); " + "/".join(PAPER_VARIANTS) + ": the published architecture unchanged (dim 8 / 32, "
             "8,378 / 40,130 parameters; of the options below it reads " + ", ".join(paper_uses) +
             "; the others must stay unset) (default: fast)")
    for flag in flags:
        f = flag.field
        help_ = f"{f.metadata['help']} (default: {default_text(flag)})"
        if kind(f) == "bool":
            groups[f.metadata["group"]].add_argument(f"--{flag.name}", action="store_true", help=help_)
        else:
            groups[f.metadata["group"]].add_argument(
                f"--{flag.name}", type={"int": int, "float": float, "str": str}[kind(f)], default=None,
                choices=f.metadata["choices"], help=help_)
    return parser


def get_loss_parser(add_help: bool = False) -> argparse.ArgumentParser:
    """The loss options, one per LossConfig field (scripts/models/losses.py), and --no_triplet."""
    from scripts.models.losses import LossConfig  # torch: training parsers only

    parser = OneLineParser(add_help=add_help)
    group = parser.add_argument_group("loss")
    for f in dataclasses.fields(LossConfig):
        group.add_argument(f"--{f.name}", type=finite_float, default=f.default,
                           help=f"{f.metadata['help']} (default: {f.default:g})")
    group.add_argument("--no_triplet", action="store_true",
                       help="ablation: drop the triplet loss (sets its weight to 0) (default: off)")
    return parser


def get_train_parser(add_help: bool = False) -> argparse.ArgumentParser:
    parser = OneLineParser(add_help=add_help)
    group = parser.add_argument_group("training")
    group.add_argument("--train_list", type=Path, default=None, help="training manifest (required)")
    group.add_argument("--val_list", type=Path, default=None,
                       help="validation manifest; the best epoch is chosen on it, never on the test set "
                            "(required)")
    group.add_argument("--exp_name", type=str, default="mate",
                       help="run folder name: everything is written to <runs_dir>/<exp_name>/ (default: mate)")
    group.add_argument("--runs_dir", type=Path, default=Path("runs"), help="parent of run folders (default: runs)")
    group.add_argument("--batch_size", type=int, default=16,
                       help="videos per batch, half normal and half anomalous; keep it equal across "
                            "compared experiments (default: 16)")
    group.add_argument("--lr", type=finite_float, default=0.002, help="AdamW peak learning rate (default: 0.002)")
    group.add_argument("--weight_decay", type=finite_float, default=0.002, help="AdamW weight decay (default: 0.002)")
    group.add_argument("--max_epoch", type=int, default=150,
                       help="training epochs; with --resume it may grow (not shrink): the warm-up + cosine "
                            "schedule is then recomputed for the new length from the stored step, so the "
                            "numbers differ from a run started with the larger value (default: 150)")
    group.add_argument("--warmup_epochs", type=finite_float, default=5.0,
                       help="linear warm-up length in epochs, then cosine decay to lr/100 (default: 5)")
    group.add_argument("--select_from_epoch", type=int, default=1,
                       help="the first epoch checkpoint_best.pth may come from; earlier epochs are trained and "
                            "validated but never selected. With few validation videos an early, barely trained "
                            "epoch can reach the top validation ROC-AUC first and keep it (ties keep the first); "
                            "the sequence configs set it (docs/model.md); a run of fewer epochs selects from its "
                            "last (default: 1, every epoch)")
    group.add_argument("--grad_clip", type=finite_float, default=1.0,
                       help="clip the gradient norm to this value; 0 = off (default: 1.0)")
    group.add_argument("--eval_batch_size", type=int, default=32,
                       help="videos per batch when scoring (map features) (default: 32)")
    group.add_argument("--resume", action="store_true",
                       help="continue the run from <run>/checkpoint_last.pth, with optimiser, scheduler and "
                            "RNG state; every option that changes the result must be the run's (a difference "
                            "is refused naming it); without checkpoint_last.pth yet the run starts from "
                            "scratch, so a requeue script may always pass it (default: off)")
    group.add_argument("--overwrite", action="store_true",
                       help="start the run again even if its folder already holds checkpoints (default: "
                            "refuse)")
    group.add_argument("--pretrained_ckpt", type=Path, default=None,
                       help="start from these weights: a MATE checkpoint or the authors' published state "
                            "dict (data/published/MATE_base.pkl with --model_variant paper_base); the run's "
                            "model must be the checkpoint's (same variant, weights load strictly); with "
                            "--resume only the file the run started from (default: the variant's random "
                            "initialisation)")
    group.add_argument("--oracle_test_list", type=Path, default=None,
                       help="also score this test manifest after every epoch and record the epoch best on it "
                            "(metrics.csv oracle_* columns, oracle.json): the test-set selection the peers "
                            "report, written beside the validation-selected result, never instead of it "
                            "(default: off)")
    group.add_argument("--oracle_gt", type=Path, default=None,
                       help="the frame annotation file of --oracle_test_list (sequence features): the oracle "
                            "epoch is then the one with the benchmark's best frame-level figure (default: "
                            "video ROC-AUC)")
    study = parser.add_argument_group("fold study: K folds x seeds in one process over one feature cache "
                                      "(scripts/training/fold_study.py)")
    study.add_argument("--folds_dir", type=Path, default=None,
                       help="train every fold of this folder (StratifiedKFold.py's fold<k>_train.txt, fold<k>_val.txt) "
                            "x every --seeds in this one process, into runs/<exp_name>_s<seed>_fold<k>/ (each run "
                            "as main.py makes it alone), instead of --train_list / --val_list (default: off)")
    study.add_argument("--folds", type=int, default=5, help="the folds of --folds_dir: 0..K-1 (default: 5)")
    study.add_argument("--seeds", type=seed_int, nargs="+", default=None,
                       help="the seeds of the study (default: --seed alone)")
    study.add_argument("--study_workers", type=int, default=0,
                       help="worker processes stepping runs at the same time, one torch thread each, forked once "
                            "the features are loaded (they share them); 0 = one per core, at most one per run; off "
                            "Linux and on CUDA the runs train in the main process (default: 0)")
    group.add_argument("--tensorboard", action="store_true",
                       help="also write TensorBoard event files (every number of metrics.csv, per epoch) into "
                            "<run>/tensorboard/ for live curves; needs the optional requirements, pip install -r "
                            "requirements-optional.txt (default: off)")
    group.add_argument("--stop_epoch", type=int, default=None,
                       help="stop after this epoch as if interrupted (e.g. to fit a time-limited job); "
                            "continue later with --resume (default: run to --max_epoch)")
    return parser


def get_analysis_parser(add_help: bool = False) -> argparse.ArgumentParser:
    """Flags shared by the diagnostics (test1.py, test2.py, motion_map_analyze.py)."""
    parser = OneLineParser(add_help=add_help)
    group = parser.add_argument_group("inputs and outputs")
    group.add_argument("--test_list", type=Path, default=None,
                       help="manifest of the videos to analyse (default: the test list of the run's last "
                            "test.py evaluation; with no --test_list, --checkpoint or --exp_name, the latest "
                            "evaluation of any run under --runs_dir, its checkpoint included)")
    group.add_argument("--checkpoint", type=Path, default=None,
                       help="checkpoint of a trained model (default: <runs_dir>/<exp_name>/checkpoint_best.pth "
                            "when --exp_name is given)")
    group.add_argument("--exp_name", type=str, default=None,
                       help="run whose checkpoint_best.pth is used and whose plots/ folder receives the outputs "
                            "(default: none)")
    group.add_argument("--runs_dir", type=Path, default=Path("runs"), help="parent of run folders (default: runs)")
    group.add_argument("--out_dir", type=Path, default=None,
                       help="where PNGs and CSV/JSON go (default: the run's plots/ folder)")
    group.add_argument("--batch_size", type=int, default=32, help="videos per batch when scoring maps (default: 32)")
    group.add_argument("--force_settings", action="store_true",
                       help="analyse features extracted otherwise than the checkpoint's training features, "
                            "with a warning (default: off: refused)")
    return parser
