"""The training loop (docs/design.md §5): AdamW, warm-up then cosine decay, balanced batches from features
held in memory, validation every epoch, best checkpoint by validation ROC-AUC, exact `--resume`.

A run folder has one job at a time: `run_training` checks the options, the lists and --pretrained_ckpt
without writing anything, then takes the folder's lock (scripts/core/locks.py) and holds it to the end, so
a second job on the same --exp_name is refused naming the first, and a job killed at any moment leaves
the files of its last finished epoch (every write is atomic, scripts/core/fileio.py).

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
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR
from tqdm import tqdm

from scripts.models.checkpoint import (FORMAT, expected_shapes, init_from_checkpoint, load_checkpoint, save_checkpoint,
                               state_dict_mismatch)
from scripts.core.devices import check_threads, resolve_device, thread_governor, use_threads
from scripts.dataset import BalancedBatchSampler, FeatureDataset
from scripts.data.manifest import read_manifest
from scripts.core.errors import MateError
from scripts.data.feature_settings import describe, first_difference, read_extraction
from scripts.core.fileio import remove_stale_temps
from scripts.core.locks import LOCK_NAME, exclusive_lock
from scripts.models.losses import LossConfig, MateLoss
from scripts.evaluation.metrics import f1_threshold, pr_auc, roc_auc
from scripts.model import ModelConfig, build_model, config_for_variant, count_parameters, feature_motion_map
from scripts.option import get_model_parser, options_to_dict
from scripts.core.runlog import RunFolder, git_commit
from scripts.evaluation.scoring import score_dataset

RUN_FILES = ("checkpoint_best.pth", "checkpoint_last.pth", "metrics.csv", "train.log", "config.json")
PLOT_FILES = ("loss.png", "auc.png")  # in plots/, beside test.py's curves
# Options that may differ when a run is resumed: where and how it runs, not what it computes. Every
# other option (model, loss, lists, optimiser, schedule, batch, seed, features) must equal the stored
# run's. --max_epoch may only grow (advance_schedule); --pretrained_ckpt with --resume only as the run began
# (the weights come from checkpoint_last.pth) and the run keeps the value it was started with.
RESUME_FREE = ("config", "exp_name", "runs_dir", "resume", "overwrite", "stop_epoch", "max_epoch",
               "pretrained_ckpt", "device", "threads", "num_workers", "eval_batch_size", "no_progress",
               "no_plots")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# The model options of MATE's parts, which the MIL baseline does not have. With --model_variant mil
# each must stay at its parser default (a --config file's value counts as set); any other value is
# refused in one line, never silently dropped. (At its default a flag cannot be told from unset.)
MATE_ONLY_OPTIONS = ("dim", "num_blocks", "motion_window", "tcc_mode", "num_queries", "spatial_window",
                     "video_logit", "input_norm", "no_motion_map", "no_difference_features", "no_attention",
                     "no_tcc", "no_motion_pooling", "num_heads", "ff_mult", "tcc_bottleneck", "snippet_hidden",
                     "head_hidden")


def model_overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the model options set for args.model_variant (None = keep the variant's value).

    For mil only --dropout applies; a MATE-only option set away from its default is a MateError.
    """
    if args.model_variant == "mil":
        defaults = get_model_parser().parse_args([])
        for name in MATE_ONLY_OPTIONS:
            if getattr(args, name) != getattr(defaults, name):
                raise MateError(f"--{name}: an option of MATE's parts; --model_variant mil (the MIL baseline) "
                                "has none of them (of the model options only --dropout applies to it)")
        return {"dropout": args.dropout}
    overrides: dict[str, Any] = dict(
        motion_window=args.motion_window, num_queries=args.num_queries,
        spatial_window=args.spatial_window, use_motion_map=not args.no_motion_map,
        use_difference_features=not args.no_difference_features, use_attention=not args.no_attention,
        use_tcc=not args.no_tcc, use_motion_pooling=not args.no_motion_pooling)
    for key in ("dim", "num_blocks", "tcc_mode", "dropout", "video_logit", "input_norm", "num_heads", "ff_mult",
                "tcc_bottleneck", "snippet_hidden", "head_hidden"):
        overrides[key] = getattr(args, key)
    return overrides


def model_config_from_args(args: argparse.Namespace, in_channels: int) -> ModelConfig:
    """The variant's config with the flags that were set (see model_overrides_from_args)."""
    return config_for_variant(args.model_variant, in_channels=in_channels, **model_overrides_from_args(args))


def loss_config_from_args(args: argparse.Namespace) -> LossConfig:
    return LossConfig(lambda_triplet=0.0 if args.no_triplet else args.lambda_triplet,
                      triplet_margin=args.triplet_margin, lambda_topk=args.lambda_topk,
                      topk_ratio=args.topk_ratio, lambda_sparsity=args.lambda_sparsity,
                      lambda_smooth=args.lambda_smooth)


def build_optimizer(model: torch.nn.Module, *, lr: float, weight_decay: float,
                    device: torch.device) -> torch.optim.AdamW:
    """AdamW; on CPU and CUDA its fused kernel (one call for all parameters instead of a few per
    parameter tensor: the step of an 8k-parameter model drops from ~1.5 ms to ~0.3 ms on CPU)."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                             fused=device.type in ("cpu", "cuda") or None)


def build_scheduler(optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, max_epoch: int,
                    warmup_epochs: float) -> LRScheduler:
    """Per-step linear warm-up from lr/100, then cosine decay to lr/100 at the last step."""
    total = max(1, steps_per_epoch * max_epoch)
    warmup = min(total - 1, int(round(warmup_epochs * steps_per_epoch)))
    base_lr = optimizer.param_groups[0]["lr"]
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, total - warmup), eta_min=base_lr / 100)
    if warmup <= 0:
        return cosine
    linear = LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def advance_schedule(scheduler: LRScheduler, steps: int) -> None:
    """Step a freshly built schedule `steps` times without training: where a resumed run whose
    --max_epoch grew stands on its new schedule (the optimiser's lr ends at that step's value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns of scheduler steps without optimiser steps: meant here
        for _ in range(steps):
            scheduler.step()


def check_training_options(args: argparse.Namespace) -> None:
    """Refuse option values that cannot train, in one line, before anything is read or written."""
    if args.max_epoch < 1:
        raise MateError(f"--max_epoch: must be at least 1, got {args.max_epoch}")
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
    check_threads(args.threads)
    if args.resume and args.overwrite:
        raise MateError("--resume and --overwrite exclude each other")


def check_disjoint(train: list, val: list, train_list: Path, val_list: Path) -> None:
    shared = sorted({e.name for e in train} & {e.name for e in val})
    if shared:
        raise MateError(f"{val_list}: {len(shared)} videos are also in {train_list} (e.g. {shared[:3]}); "
                        "validation must not see training videos")


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


def read_training_extraction(train_entries, val_entries, args: argparse.Namespace) -> dict:
    """The extraction settings of the training features (all videos agree), checked on validation."""
    record = read_extraction(train_entries, source=args.train_list)
    val = read_extraction(val_entries, source=args.val_list)
    if val != record:
        key = first_difference(record["settings"] or {}, val["settings"] or {}) or "sidecars"
        raise MateError(f"{args.val_list}: its features were extracted otherwise than the training features of "
                        f"{args.train_list} ({key}: {describe(val['settings'])} vs {describe(record['settings'])})")
    return record


def read_lists(args: argparse.Namespace) -> tuple[list, list]:
    """The training and validation manifests' entries (read only: a wrong list creates no run folder)."""
    train_entries = read_manifest(args.train_list, require_both_labels=True)
    val_entries = read_manifest(args.val_list, require_both_labels=True)
    check_disjoint(train_entries, val_entries, args.train_list, args.val_list)
    return train_entries, val_entries


def load_data(args: argparse.Namespace, train_entries: list,
              val_entries: list) -> tuple[FeatureDataset, FeatureDataset, dict]:
    """The training and validation datasets, and the extraction record of their features (their sidecars'
    settings, which the checkpoint stores)."""
    extraction = read_training_extraction(train_entries, val_entries, args)
    common = dict(crop_mode=args.crop_mode, cache_dtype=args.cache_dtype, progress=not args.no_progress,
                  workers=args.num_workers)
    train_ds = FeatureDataset(train_entries, num_segments=args.num_segments, **common)
    val_ds = FeatureDataset(val_entries, num_segments=None, **common)
    (C, _, H, W), (vC, _, vH, vW) = train_ds.feature_shape, val_ds.feature_shape
    if (C, H, W) != (vC, vH, vW) or train_ds.is_sequence != val_ds.is_sequence:
        raise MateError(f"{args.val_list}: features [C={vC}, H={vH}, W={vW}] differ from the training "
                        f"features [C={C}, H={H}, W={W}] of {args.train_list}")
    return train_ds, val_ds, extraction


def run_training(args: argparse.Namespace) -> dict[str, Any]:
    """Train as the options say and write the run folder; returns the best epoch's numbers.

    What can be checked without writing is checked first (options, lists, --pretrained_ckpt); then the
    run folder's lock is taken and held to the end, and only then is anything there removed or written.
    """
    check_training_options(args)
    model_overrides_from_args(args)  # refuse model options that do not fit the variant before any work
    loss_cfg = loss_config_from_args(args)
    pretrained_path = getattr(args, "pretrained_ckpt", None)
    pretrained = None if pretrained_path is None else load_checkpoint(pretrained_path)
    entries = read_lists(args)
    run_dir = Path(args.runs_dir) / args.exp_name
    with exclusive_lock(run_dir / LOCK_NAME, what=f"run folder {run_dir}"):
        remove_stale_temps(run_dir, RUN_FILES)  # of a killed job: no live writer holds them now
        remove_stale_temps(run_dir / "plots", PLOT_FILES)
        return train_in(run_dir, args, loss_cfg, pretrained, entries)


def train_in(run_dir: Path, args: argparse.Namespace, loss_cfg: LossConfig, pretrained: dict[str, Any] | None,
             entries: tuple[list, list]) -> dict[str, Any]:
    """run_training's work inside the run folder, whose lock the caller holds."""
    last_path = run_dir / "checkpoint_last.pth"
    stored = prepare_run_dir(args, run_dir)
    options = options_to_dict(args)
    if stored is not None:
        check_resume_options(stored["options"], options, source=last_path)  # before the features load
        options["pretrained_ckpt"] = stored["options"].get("pretrained_ckpt")  # how the run began stays recorded
    seed_everything(args.seed)
    device = resolve_device(args.device)
    threads = use_threads(args.threads)  # before the features load: they keep our own cores busy
    train_ds, val_ds, extraction = load_data(args, *entries)
    feature = feature_record(args, train_ds, extraction)
    if stored is not None:
        check_resume_features(stored["feature"], feature, source=last_path, train_list=args.train_list)
    model_cfg = model_config_from_args(args, in_channels=train_ds.feature_shape[0])
    model = build_model(model_cfg)
    if pretrained is not None:
        init_from_checkpoint(model, model_cfg, pretrained, source=args.pretrained_ckpt)
    model = model.to(device)
    loss_fn = MateLoss(loss_cfg)
    optimizer = build_optimizer(model, lr=args.lr, weight_decay=args.weight_decay, device=device)
    sampler = BalancedBatchSampler(train_ds.labels, batch_size=args.batch_size, seed=args.seed)
    scheduler = build_scheduler(optimizer, steps_per_epoch=len(sampler), max_epoch=args.max_epoch,
                                warmup_epochs=args.warmup_epochs)
    state, notes = TrainState(), []
    if stored is not None:
        state, notes = restore(stored, last_path, model, optimizer, scheduler, model_cfg,
                               max_epoch=args.max_epoch, steps_per_epoch=len(sampler))
    elif args.resume:
        notes = ["--resume: no checkpoint_last.pth yet, so the run starts from scratch"]
    run = RunFolder(run_dir, quiet=args.no_progress)
    run.write_config(options, model_config=dataclasses.asdict(model_cfg),
                     loss_config=dataclasses.asdict(loss_fn.cfg), feature=feature,
                     parameters=count_parameters(model), device=str(device))
    for note in notes:
        run.log(note)
    verb = "resuming" if stored is not None else "starting"
    run.log(f"{verb} {run_dir} at epoch {state.epoch + 1}/{args.max_epoch}: "
            f"{args.model_variant} ({count_parameters(model):,} parameters) on {device} ({threads}), "
            f"{len(train_ds)} train / {len(val_ds)} val videos, features {list(train_ds.feature_shape)}, "
            f"git {git_commit() or 'unknown'}"
            + (f", initialised from {args.pretrained_ckpt}" if pretrained is not None else ""))
    # what every checkpoint holds (format FORMAT, scripts/models/checkpoint.py)
    common = dict(format=FORMAT, model_config=dataclasses.asdict(model_cfg), loss_config=dataclasses.asdict(loss_cfg),
                  options=options, feature=feature)
    last_epoch = min(args.max_epoch, args.stop_epoch or args.max_epoch)
    bar = tqdm(range(state.epoch + 1, last_epoch + 1), desc=args.exp_name, unit="epoch",
               disable=args.no_progress, initial=state.epoch, total=args.max_epoch)
    governor = thread_governor(args.threads)  # --threads 0: chosen again after every epoch
    for epoch in bar:
        start = time.time()
        sampler.set_epoch(epoch)
        terms = train_one_epoch(model, loss_fn, optimizer, scheduler, train_ds, sampler, args, device, epoch)
        row = {"epoch": epoch, **terms, "lr": optimizer.param_groups[0]["lr"],
               **validate(model, val_ds, args, device, sequence=train_ds.is_sequence),
               "seconds": round(time.time() - start, 3)}
        state.epoch = epoch
        state.history.append(row)
        save_epoch(run, model, optimizer, scheduler, state, common, row)
        run.write_metrics(state.history)
        run.log(f"epoch {epoch}/{args.max_epoch} loss {row['loss']:.4f} lr {row['lr']:.2e} "
                f"val ROC-AUC {row['val_roc_auc']:.4f} PR-AUC {row['val_pr_auc']:.4f} ({row['seconds']:.1f}s)")
        bar.set_postfix(loss=f"{row['loss']:.3f}", val_auc=f"{row['val_roc_auc']:.3f}",
                        best=f"{state.best['val_roc_auc']:.3f}")
        change = governor.update() if governor is not None else None
        if change:
            run.log(change)
    bar.close()
    if not args.no_plots:
        run.plot_curves(state.history)
    finished = state.epoch >= args.max_epoch
    run.log(f"{'finished' if finished else f'stopped after epoch {state.epoch} (continue with --resume)'}: "
            f"best epoch {state.best['epoch']} val ROC-AUC {state.best['val_roc_auc']:.4f}; {run_dir}")
    return {"run_dir": str(run_dir), "epoch": state.epoch, "finished": finished, "best": state.best}


def feature_record(args: argparse.Namespace, train_ds: FeatureDataset, extraction: dict) -> dict[str, Any]:
    """What the checkpoint records of the training features: shape, layout, how they are read, and how
    they were made (scripts/data/feature_settings.py)."""
    return {"shape": list(train_ds.feature_shape), "sequence": train_ds.is_sequence, "crop_mode": args.crop_mode,
            "num_segments": args.num_segments, "frames_per_snippet": args.frames_per_snippet,
            "extraction": extraction}


def validate(model, val_ds: FeatureDataset, args: argparse.Namespace, device, *, sequence: bool) -> dict[str, float]:
    """One epoch's validation: ROC-AUC and PR-AUC of the video scores, and the alarm threshold."""
    val = score_dataset(model, val_ds, device=device, batch_size=args.eval_batch_size)
    labels = val_ds.labels.numpy()
    return {"val_roc_auc": roc_auc(labels, val.video), "val_pr_auc": pr_auc(labels, val.video),
            "val_threshold": val_threshold(labels, val, sequence=sequence)}


def save_epoch(run: RunFolder, model, optimizer, scheduler, state: TrainState, common: dict[str, Any],
               row: dict[str, Any]) -> None:
    """checkpoint_best.pth when the epoch beats the best validation ROC-AUC, then checkpoint_last.pth:
    best before last, so a job killed between the two resumes from the previous last and redoes the epoch."""
    metrics = {k: row[k] for k in ("val_roc_auc", "val_pr_auc", "loss", "val_threshold")}
    epoch = row["epoch"]
    if row["val_roc_auc"] > state.best["val_roc_auc"]:
        state.best = {"epoch": epoch, **metrics}
        save_checkpoint(run.file("checkpoint_best.pth"),
                        {"model": model.state_dict(), **common, "epoch": epoch, "metrics": metrics})
    save_checkpoint(run.file("checkpoint_last.pth"), {
        "model": model.state_dict(), **common, "epoch": epoch, "metrics": metrics,
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state()}, "best": state.best, "history": state.history})


def val_threshold(labels: np.ndarray, val, *, sequence: bool) -> float:
    """The alarm threshold test.py --video marks intervals with, chosen on validation (never on test) on
    the kind of score its curve shows (docs/design.md §6): the F1-maximising threshold of the video scores
    for map features (the curve scores maps of consecutive clips), of each video's peak snippet score for
    sequences (a video is flagged when any snippet reaches it)."""
    scores = np.array([s.max() for s in val.snippets]) if sequence else val.video
    return round(f1_threshold(labels, scores), 6)


def train_one_epoch(model, loss_fn, optimizer, scheduler, train_ds, sampler, args, device, epoch) -> dict[str, float]:
    """One pass over the balanced batches; returns the mean of each loss term."""
    model.train()
    sums: dict[str, float] = {}
    steps = 0
    motion_key = feature_motion_map(model)
    for step, idx in enumerate(sampler):
        x, y = train_ds.batch(idx)
        x, y = x.to(device, non_blocking=True), y.to(device)  # x [B, C, T, H, W], y [B]
        # the MotionMap of these features, computed once per video (None: the model computes its own)
        motion = train_ds.motion_maps(idx, *motion_key) if motion_key else None
        out = model(x, motion=motion)
        loss, terms = loss_fn(out.video_logit, out.snippet_logits, out.embedding, y)
        if not torch.isfinite(loss):
            raise MateError(f"{args.exp_name}: the loss became {float(loss)} at epoch {epoch}, step {step}; "
                            "lower --lr, or check the features for extreme values")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        scheduler.step()
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        for k, v in terms.items():
            sums[f"loss_{k}"] = sums.get(f"loss_{k}", 0.0) + v
        steps += 1
    return {k: v / steps for k, v in sums.items()}




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
    torch.set_rng_state(ckpt["rng"]["torch"])
    return TrainState(epoch=ckpt["epoch"], best=dict(ckpt["best"]), history=list(ckpt["history"])), notes
