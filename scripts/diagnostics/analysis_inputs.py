"""What the diagnostics (test1.py, test2.py, motion_map_analyze.py) analyse when not told.

The original README runs them with no arguments (`python test1.py`). Then they take the most recent
run under --runs_dir that test.py has evaluated, its evaluated checkpoint and the test manifest of
that evaluation (both recorded in the run's test_metrics.json), and say what they chose. Given only
--exp_name or --checkpoint, the test manifest comes from that run's test_metrics.json.
`load_analysis_run` is the diagnostics' common start: those inputs, the output folder, the device
and, when there is a checkpoint, the model and the test features checked against it.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scripts.core.errors import MateError, check_component

if TYPE_CHECKING:  # torch and the dataset load only when a diagnostic runs, not for --help
    import torch

    from scripts.dataset import FeatureDataset

METRICS_FILE = "test_metrics.json"


@dataclass(frozen=True)
class Evaluation:
    """One test.py evaluation: the checkpoint it scored and the test manifest it scored."""

    checkpoint: Path
    test_list: Path
    record: Path  # the test_metrics.json it came from


def read_evaluation(record: Path) -> Evaluation | None:
    """The evaluation recorded in a test_metrics.json, or None if it is unreadable or incomplete."""
    try:
        data = json.loads(record.read_text())
        checkpoint, test_list = data["checkpoint"], data["test_list"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # as typed when it still resolves from here (the message shows it so), else the absolute path
    if not Path(test_list).is_file() and data.get("test_list_resolved"):
        test_list = data["test_list_resolved"]
    if not Path(checkpoint).is_file() and data.get("checkpoint_resolved"):
        checkpoint = data["checkpoint_resolved"]
    return Evaluation(checkpoint=Path(checkpoint), test_list=Path(test_list), record=record)


def latest_evaluation(runs_dir: Path) -> Evaluation:
    """The newest test.py evaluation of any run under `runs_dir` (by its test_metrics.json's mtime)."""
    records = sorted(Path(runs_dir).glob(f"*/{METRICS_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for record in records:
        found = read_evaluation(record)
        if found is not None:
            return found
    raise MateError(f"{runs_dir}: no run evaluated by test.py to analyse; pass --test_list and "
                    f"--checkpoint (or --exp_name)")


def fill_analysis_inputs(args: argparse.Namespace, script: str) -> None:
    """Fill args.test_list (and args.checkpoint) from the runs when not given, and print the choice."""
    if args.test_list is not None:
        return
    if args.checkpoint is None and args.exp_name is None:
        found = latest_evaluation(args.runs_dir)
        args.checkpoint = found.checkpoint
        print(f"{script}: no --test_list/--checkpoint given; using {found.checkpoint} and its test list "
              f"{found.test_list} (the latest test.py evaluation, {found.record})")
    else:
        run_dir = Path(args.checkpoint).parent if args.checkpoint is not None else Path(args.runs_dir) / args.exp_name
        found = read_evaluation(run_dir / METRICS_FILE)
        if found is None:
            raise MateError(f"{run_dir}: no {METRICS_FILE} naming a test list (run test.py on it first); "
                            f"pass --test_list")
        print(f"{script}: no --test_list given; using {found.test_list} (the last test.py evaluation, "
              f"{found.record})")
    args.test_list = found.test_list


@dataclass
class AnalysisRun:
    """What a diagnostic analyses: the checkpoint (None: the features alone), where its outputs go,
    the device, and with a checkpoint its model, the checkpoint dict and the checked test features."""

    checkpoint: Path | None
    out_dir: Path
    device: torch.device
    model: torch.nn.Module | None = None
    ckpt: dict[str, Any] | None = None
    ds: FeatureDataset | None = None


def load_analysis_run(args: argparse.Namespace, script: str, *, need_checkpoint: bool = False,
                      default_exp: str | None = None) -> AnalysisRun:
    """Fill the inputs (`fill_analysis_inputs`), resolve checkpoint and output folder, pick the device
    and, when there is a checkpoint, load the model and the test features it is checked against.

    Args:
        args (argparse.Namespace): the flags of scripts.option.get_analysis_parser and get_runtime_parser.
        script (str): the script's name, for the message that says what was chosen.
        need_checkpoint (bool): no checkpoint (no --checkpoint, --exp_name or evaluated run) is an error.
        default_exp (str): the run folder of the outputs when neither a checkpoint nor --exp_name names one.
    """
    from scripts.core.devices import resolve_device, use_threads

    if args.exp_name is not None:
        check_component(args.exp_name, "--exp_name")  # a folder of --runs_dir, as main.py's
    fill_analysis_inputs(args, script)
    checkpoint, out_dir = resolve_analysis_paths(args, default_exp=default_exp, need_checkpoint=need_checkpoint)
    device = resolve_device(args.device)
    use_threads(args.threads)
    if checkpoint is None:
        return AnalysisRun(checkpoint=None, out_dir=out_dir, device=device)
    from scripts.evaluation.evaluation import load_for_scoring

    model, ckpt, ds, _ = load_for_scoring(checkpoint, args.test_list, device=device, progress=not args.no_progress,
                                       force_settings=args.force_settings, workers=args.num_workers)
    return AnalysisRun(checkpoint=checkpoint, out_dir=out_dir, device=device, model=model, ckpt=ckpt, ds=ds)


def resolve_analysis_paths(args: argparse.Namespace, *, default_exp: str | None = None,
                           need_checkpoint: bool = False) -> tuple[Path | None, Path]:
    """(checkpoint or None, output folder) from --checkpoint / --exp_name / --out_dir."""
    checkpoint = args.checkpoint
    if checkpoint is None and args.exp_name is not None:
        checkpoint = Path(args.runs_dir) / args.exp_name / "checkpoint_best.pth"
    if checkpoint is None and need_checkpoint:
        raise MateError("--checkpoint or --exp_name is required")
    if args.out_dir is not None:
        return checkpoint, Path(args.out_dir)
    if checkpoint is not None:
        if Path(checkpoint).is_file():  # a published state dict writes to runs/<name>, not beside itself
            from scripts.models.checkpoint import load_checkpoint, output_folder
            return checkpoint, output_folder(checkpoint, load_checkpoint(checkpoint)) / "plots"
        return checkpoint, Path(checkpoint).parent / "plots"
    return checkpoint, Path(args.runs_dir) / (args.exp_name or default_exp or "analysis") / "plots"
