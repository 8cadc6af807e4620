"""A run folder before its first epoch and on --resume (docs/design.md §5): the options and lists refused
before anything is written, the folder cleared, refused or continued, the options and features a resumed run must keep, and the exact restore of its state.

--resume rules: every option that changes the result must equal the stored run's (RESUME_FREE lists
those that may differ); --max_epoch may grow, and the warm-up + cosine schedule is then recomputed for
the new length from the stored step (`advance_schedule`); --resume on a folder without
checkpoint_last.pth (killed in its first epoch, or never started) starts the run from scratch.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from scripts.core.devices import check_threads
from scripts.core.errors import MateError, check_component
from scripts.data.feature_settings import describe
from scripts.model import ModelConfig
from scripts.model import expected_shapes
from scripts.models.checkpoint import load_checkpoint, state_dict_mismatch


RUN_FILES = ("checkpoint_best.pth", "checkpoint_last.pth", "metrics.csv", "train.log", "config.json", "oracle.json")
PLOT_FILES = ("loss.png", "auc.png")  # in plots/, beside test.py's curves
# Options that may differ when a run is resumed: where and how it runs, not what it computes. Every
# other option (model, loss, lists, optimiser, schedule, batch, seed, features) must equal the stored
# run's. --max_epoch may only grow (advance_schedule); --pretrained_ckpt with --resume only as the run began
# (the weights come from checkpoint_last.pth) and the run keeps the value it was started with.
RESUME_FREE = ("config", "exp_name", "runs_dir", "resume", "overwrite", "stop_epoch", "max_epoch",
               "pretrained_ckpt", "device", "threads", "num_workers", "eval_batch_size", "no_progress", "tensorboard",
               "folds_dir", "folds", "seeds", "study_workers",
               "no_plots", "comment")


def advance_schedule(scheduler: LRScheduler, steps: int) -> None:
    """Step a freshly built schedule `steps` times without training: where a resumed run whose
    --max_epoch grew stands on its new schedule (the optimiser's lr ends at that step's value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns of scheduler steps without optimiser steps: meant here
        for _ in range(steps):
            scheduler.step()


def prepare_run_dir(args: argparse.Namespace, run_dir: Path) -> dict[str, Any] | None:
    """The run's checkpoint_last.pth when --resume continues it, else None, the folder cleared of an
    earlier attempt. Call it holding the folder's lock.

    Without --resume an earlier run is refused unless --overwrite. --resume on a folder without
    checkpoint_last.pth (killed in its first epoch, or never started) starts from scratch, keeping and
    continuing train.log, so a requeue script may always pass --resume.
    """
    last = run_dir / "checkpoint_last.pth"
    given = getattr(args, "pretrained_ckpt", None)
    if args.resume:
        if last.is_file():
            stored = load_checkpoint(last)
            check_resume_init(given, stored["options"].get("pretrained_ckpt"), run_dir)
            return stored
        init = started_from(run_dir)
        if init is not None and given is None:
            raise MateError(f"{run_dir}: no checkpoint_last.pth to resume, and the run was started from "
                            f"--pretrained_ckpt {init}; pass it again (--resume --pretrained_ckpt {init}) so the "
                            "run starts as it did")
        check_resume_init(given, init, run_dir)
        for name in RUN_FILES:
            if name != "train.log":
                (run_dir / name).unlink(missing_ok=True)
        return None
    if any((run_dir / f).exists() for f in RUN_FILES):
        if not args.overwrite:
            raise MateError(f"{run_dir}: run folder already holds a run; pass --resume to continue it or "
                            "--overwrite to start again")
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "plots", ignore_errors=True)
        shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
    return None


def check_resume_init(given: Path | None, recorded: str | None, run_dir: Path) -> None:
    """--pretrained_ckpt with --resume: the same file the run started from is fine (a requeue script passes
    its flags again; the weights come from checkpoint_last.pth anyway); another one is refused, because
    the run would claim a start it did not have."""
    if given is None or recorded is None and not (run_dir / "checkpoint_last.pth").is_file():
        return
    if recorded is not None and Path(given).resolve() == Path(recorded).resolve():
        return
    began = f"--pretrained_ckpt {recorded}" if recorded is not None else "random weights"
    raise MateError(f"--pretrained_ckpt {given} with --resume: {run_dir} started from {began} and continues "
                    "from its own weights; drop --pretrained_ckpt (or pass the run's), or start again with "
                    "--overwrite")


def started_from(run_dir: Path) -> str | None:
    """The --pretrained_ckpt an unfinished first attempt recorded in config.json (None: none or unknown)."""
    try:
        return json.loads((run_dir / "config.json").read_text())["options"].get("pretrained_ckpt")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def resume_differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The options, other than RESUME_FREE, whose value now differs from the stored run's (an option one
    side lacks differs: a run made by another MATE version is not continued on guesses)."""
    keys = [k for k in list(now) + [k for k in stored if k not in now] if k not in RESUME_FREE]
    return [k for k in keys if k not in stored or k not in now or not same_option(k, stored[k], now[k])]


def same_option(key: str, stored: Any, now: Any) -> bool:
    if stored == now:
        return True
    if key in ("train_list", "val_list") and isinstance(stored, str) and isinstance(now, str):
        try:  # the same manifest, spelled relative once and absolute once
            return os.path.samefile(stored, now)
        except OSError:
            return False
    return False


def check_resume_options(stored: dict[str, Any], now: dict[str, Any], *, source: Path) -> None:
    """Refuse, in one line naming the first option and both values, a resume whose options differ from
    the run's in anything but RESUME_FREE, or whose --max_epoch shrinks."""
    def show(options: dict[str, Any], key: str) -> str:
        if key not in options:
            return "no such option (another MATE version)"
        return "unset (the default)" if options[key] is None else str(options[key])

    differ = resume_differences(stored, now)
    if differ:
        key, others = differ[0], differ[1:]
        also = f" (also differing: {', '.join('--' + k for k in others)})" if others else ""
        raise MateError(f"{source}: --resume with --{key} {show(now, key)}, but the run was made with "
                        f"{show(stored, key)}{also}; resume with the run's options, or start a new --exp_name")
    if now["max_epoch"] < stored["max_epoch"]:
        raise MateError(f"{source}: --resume with --max_epoch {now['max_epoch']}, below the run's "
                        f"{stored['max_epoch']}; --max_epoch may only grow (stop earlier with --stop_epoch, or "
                        "start a new --exp_name)")


def check_resume_features(stored: dict[str, Any], now: dict[str, Any], *, source: Path, train_list: Path) -> None:
    """The features must be the ones the run was trained on: the same shape, layout and extraction."""
    for key, value in now.items():
        if stored.get(key) != value:
            if key == "extraction":
                old, new = describe((stored.get(key) or {}).get("settings")), describe(value["settings"])
            else:
                old, new = stored.get(key), value
            raise MateError(f"{source}: --resume on features whose {key} is {new} ({train_list}), but the run was "
                            f"trained on {old}; resume on the run's features, or start a new --exp_name")


@dataclasses.dataclass
class TrainState:
    epoch: int = 0
    best: dict[str, Any] = dataclasses.field(default_factory=lambda: {"epoch": 0, "val_roc_auc": -math.inf})
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def restore(ckpt: dict[str, Any], path: Path, model, optimizer, scheduler, model_cfg: ModelConfig, *,
            max_epoch: int, steps_per_epoch: int) -> tuple[TrainState, list[str]]:
    """Load checkpoint_last's model, optimiser, scheduler and RNG state for an exact continuation; returns
    the training state and what the log should say. `scheduler` is built for `max_epoch` and not yet
    stepped; when --max_epoch grew it is advanced to the stored step instead of loaded (the stored one
    ends at the old length)."""
    if ckpt["model_config"] != dataclasses.asdict(model_cfg):
        changed = sorted(k for k, v in dataclasses.asdict(model_cfg).items() if ckpt["model_config"].get(k) != v)
        raise MateError(f"{path}: the model options changed since the run started ({', '.join(changed)}); "
                        "resume with the same options or start a new --exp_name")
    if "optimizer" not in ckpt:
        raise MateError(f"{path}: holds no optimiser state; cannot resume from it")
    mismatch = state_dict_mismatch(expected_shapes(model_cfg), ckpt["model"])
    if mismatch:
        raise MateError(f"{path}: its weights do not fit the model these options build ({mismatch}); "
                        "resume with the run's options, or start a new --exp_name")
    model.load_state_dict(ckpt["model"], strict=True)
    fresh_lrs = [group["lr"] for group in optimizer.param_groups]  # the new schedule's step 0
    optimizer.load_state_dict(ckpt["optimizer"])  # Adam's moments and steps; lr as at the stored step
    notes = []
    old_max = ckpt["options"]["max_epoch"]
    if max_epoch == old_max:
        scheduler.load_state_dict(ckpt["scheduler"])
    else:
        stored_lr, step = optimizer.param_groups[0]["lr"], ckpt["epoch"] * steps_per_epoch
        for group, lr in zip(optimizer.param_groups, fresh_lrs):
            group["lr"] = lr
        advance_schedule(scheduler, step)
        notes.append(f"--max_epoch {old_max} -> {max_epoch}: the warm-up + cosine schedule is recomputed for "
                     f"{max_epoch} epochs from the stored step {step} (lr {stored_lr:.2e} -> "
                     f"{optimizer.param_groups[0]['lr']:.2e}); the numbers differ from a run started with "
                     f"--max_epoch {max_epoch}")
    set_rng_state(ckpt["rng"])
    return TrainState(epoch=ckpt["epoch"], best=dict(ckpt["best"]), history=list(ckpt["history"])), notes


def rng_state() -> dict:
    """torch's RNG states: the CPU generator's, and each CUDA device's once CUDA is in use (dropout on
    the GPU draws from those), else None."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict) -> None:
    """Put back what rng_state saved (a checkpoint from a CPU run, or an older one, has no CUDA states)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        for device, generator in enumerate(cuda[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(generator, device)



def check_training_options(args: argparse.Namespace) -> None:
    """Refuse option values that cannot train, in one line, before anything is read or written."""
    check_component(args.exp_name, "--exp_name")  # the run folder is <runs_dir>/<exp_name>, nothing outside
    if args.max_epoch < 1:
        raise MateError(f"--max_epoch: must be at least 1, got {args.max_epoch}")
    if args.select_from_epoch < 1:
        raise MateError(f"--select_from_epoch: must be at least 1, got {args.select_from_epoch}")
    if args.stop_epoch is not None and args.stop_epoch < 1:
        raise MateError(f"--stop_epoch: must be at least 1, got {args.stop_epoch}")
    for name in ("lr", "weight_decay", "warmup_epochs", "grad_clip"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0:
            raise MateError(f"--{name}: must be a finite number >= 0, got {value}")
    if args.batch_size < 2 or args.batch_size % 2:
        raise MateError(f"--batch_size: must be an even number >= 2 (half normal, half anomalous), "
                        f"got {args.batch_size}")
    if args.eval_batch_size < 1:
        raise MateError(f"--eval_batch_size: must be at least 1, got {args.eval_batch_size}")
    if args.frames_per_snippet < 1:
        raise MateError(f"--frames_per_snippet: must be at least 1, got {args.frames_per_snippet}")
    check_threads(args.threads)
    if args.resume and args.overwrite:
        raise MateError("--resume and --overwrite exclude each other")


def check_disjoint(train: list, val: list, train_list: Path, val_list: Path) -> None:
    shared = sorted({e.name for e in train} & {e.name for e in val})
    if shared:
        raise MateError(f"{val_list}: {len(shared)} videos are also in {train_list} (e.g. {shared[:3]}); "
                        "validation must not see training videos")
