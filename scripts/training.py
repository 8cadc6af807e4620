"""The training loop (docs/design.md §5): AdamW, warm-up then cosine decay, balanced batches from features
held in memory, validation every epoch, best checkpoint by validation ROC-AUC, exact `--resume`."""
from __future__ import annotations

import argparse
import dataclasses
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR
from tqdm import tqdm

from scripts.checkpoint import FORMAT, init_from_checkpoint, load_checkpoint, save_checkpoint
from scripts.devices import resolve_device
from scripts.dataset import BalancedBatchSampler, FeatureDataset
from scripts.manifest import read_manifest
from scripts.errors import MateError
from scripts.feature_settings import describe, first_difference, read_extraction
from scripts.losses import LossConfig, MateLoss
from scripts.metrics import pr_auc, roc_auc
from scripts.model import ModelConfig, build_model, config_for_variant, count_parameters
from scripts.option import get_model_parser, options_to_dict
from scripts.runlog import RunFolder, git_commit
from scripts.scoring import score_dataset

RUN_FILES = ("checkpoint_best.pth", "checkpoint_last.pth", "metrics.csv", "train.log", "config.json")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# The model options of MATE's parts, which the MIL baseline does not have. With --model_variant mil
# each must stay at its parser default (a --config file's value counts as set); any other value is
# refused in one line, never silently dropped. (At its default a flag cannot be told from unset.)
MATE_ONLY_OPTIONS = ("dim", "num_blocks", "motion_window", "tcc_mode", "num_queries", "spatial_window",
                     "video_logit", "input_norm", "no_motion_map", "no_attention", "no_tcc", "no_motion_pooling",
                     "num_heads", "ff_mult", "tcc_bottleneck", "snippet_hidden", "head_hidden")


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
        use_attention=not args.no_attention, use_tcc=not args.no_tcc,
        use_motion_pooling=not args.no_motion_pooling)
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


def check_disjoint(train: list, val: list, train_list: Path, val_list: Path) -> None:
    shared = sorted({e.name for e in train} & {e.name for e in val})
    if shared:
        raise MateError(f"{val_list}: {len(shared)} videos are also in {train_list} (e.g. {shared[:3]}); "
                        "validation must not see training videos")


def prepare_run_dir(args: argparse.Namespace) -> Path:
    """Refuse to lose an earlier run: continuing needs --resume, starting again needs --overwrite."""
    run_dir = Path(args.runs_dir) / args.exp_name
    last = run_dir / "checkpoint_last.pth"
    if args.resume and args.overwrite:
        raise MateError("--resume and --overwrite exclude each other")
    if args.resume and not last.is_file():
        raise MateError(f"{last}: nothing to resume (no checkpoint_last.pth in the run folder)")
    if not args.resume and any((run_dir / f).exists() for f in RUN_FILES):
        if not args.overwrite:
            raise MateError(f"{run_dir}: run folder already holds a run; pass --resume to continue it or "
                            "--overwrite to start again")
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "plots", ignore_errors=True)
    return run_dir


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


def load_data(args: argparse.Namespace) -> tuple[FeatureDataset, FeatureDataset]:
    train_entries = read_manifest(args.train_list, require_both_labels=True)
    val_entries = read_manifest(args.val_list, require_both_labels=True)
    check_disjoint(train_entries, val_entries, args.train_list, args.val_list)
    extraction = read_training_extraction(train_entries, val_entries, args)
    common = dict(crop_mode=args.crop_mode, cache_dtype=args.cache_dtype, progress=not args.no_progress,
                  workers=args.num_workers)
    train_ds = FeatureDataset(train_entries, num_segments=args.num_segments, **common)
    val_ds = FeatureDataset(val_entries, num_segments=None, **common)
    (C, _, H, W), (vC, _, vH, vW) = train_ds.feature_shape, val_ds.feature_shape
    if (C, H, W) != (vC, vH, vW) or train_ds.is_sequence != val_ds.is_sequence:
        raise MateError(f"{args.val_list}: features [C={vC}, H={vH}, W={vW}] differ from the training "
                        f"features [C={C}, H={H}, W={W}] of {args.train_list}")
    train_ds.extraction = extraction
    return train_ds, val_ds


def run_training(args: argparse.Namespace) -> dict[str, Any]:
    """Train as the options say and write the run folder; returns the best epoch's numbers."""
    model_overrides_from_args(args)  # refuse model options that do not fit the variant before any work
    loss_cfg = loss_config_from_args(args)
    pretrained_path = getattr(args, "pretrained_ckpt", None)
    pretrained = None
    if pretrained_path is not None:
        if args.resume:
            raise MateError("--pretrained_ckpt and --resume exclude each other: --resume continues from the "
                            "run's own checkpoint_last.pth")
        pretrained = load_checkpoint(pretrained_path)  # a bad file is refused before the run folder is touched
    run_dir = prepare_run_dir(args)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    train_ds, val_ds = load_data(args)
    model_cfg = model_config_from_args(args, in_channels=train_ds.feature_shape[0])
    model = build_model(model_cfg)
    if pretrained is not None:
        init_from_checkpoint(model, model_cfg, pretrained, source=pretrained_path)
    model = model.to(device)
    loss_fn = MateLoss(loss_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sampler = BalancedBatchSampler(train_ds.labels, batch_size=args.batch_size, seed=args.seed)
    scheduler = build_scheduler(optimizer, steps_per_epoch=len(sampler), max_epoch=args.max_epoch,
                                warmup_epochs=args.warmup_epochs)
    state = TrainState()
    run = RunFolder(run_dir, quiet=args.no_progress)
    if args.resume:
        state = restore(run_dir / "checkpoint_last.pth", model, optimizer, scheduler, model_cfg)
    feature = {"shape": list(train_ds.feature_shape), "sequence": train_ds.is_sequence,
               "crop_mode": args.crop_mode, "num_segments": args.num_segments,
               "frames_per_snippet": args.frames_per_snippet,
               "extraction": train_ds.extraction}  # how the features were made (feature_settings.py)
    options = options_to_dict(args)
    run.write_config(options, model_config=dataclasses.asdict(model_cfg),
                     loss_config=dataclasses.asdict(loss_fn.cfg), feature=feature,
                     parameters=count_parameters(model), device=str(device))
    run.log(f"{'resuming' if args.resume else 'starting'} {run_dir} at epoch {state.epoch + 1}/{args.max_epoch}: "
            f"{args.model_variant} ({count_parameters(model):,} parameters) on {device}, "
            f"{len(train_ds)} train / {len(val_ds)} val videos, features {list(train_ds.feature_shape)}, "
            f"git {git_commit() or 'unknown'}"
            + (f", initialised from {pretrained_path}" if pretrained is not None else ""))
    # what every checkpoint holds (format FORMAT, scripts/checkpoint.py)
    common = dict(format=FORMAT, model_config=dataclasses.asdict(model_cfg), loss_config=dataclasses.asdict(loss_cfg),
                  options=options, feature=feature)
    last_epoch = min(args.max_epoch, args.stop_epoch or args.max_epoch)
    bar = tqdm(range(state.epoch + 1, last_epoch + 1), desc=args.exp_name, unit="epoch",
               disable=args.no_progress, initial=state.epoch, total=args.max_epoch)
    for epoch in bar:
        start = time.time()
        sampler.set_epoch(epoch)
        terms = train_one_epoch(model, loss_fn, optimizer, scheduler, train_ds, sampler, args, device, epoch)
        val = score_dataset(model, val_ds, device=device, batch_size=args.eval_batch_size)
        labels = val_ds.labels.numpy()
        row = {"epoch": epoch, **terms, "lr": optimizer.param_groups[0]["lr"],
               "val_roc_auc": roc_auc(labels, val.video), "val_pr_auc": pr_auc(labels, val.video),
               "seconds": round(time.time() - start, 3)}
        state.epoch = epoch
        state.history.append(row)
        metrics = {k: row[k] for k in ("val_roc_auc", "val_pr_auc", "loss")}
        if row["val_roc_auc"] > state.best["val_roc_auc"]:
            state.best = {"epoch": epoch, **metrics}
            save_checkpoint(run.file("checkpoint_best.pth"),
                            {"model": model.state_dict(), **common, "epoch": epoch, "metrics": metrics})
        save_checkpoint(run.file("checkpoint_last.pth"), {
            "model": model.state_dict(), **common, "epoch": epoch, "metrics": metrics,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state()}, "best": state.best, "history": state.history})
        run.write_metrics(state.history)
        run.log(f"epoch {epoch}/{args.max_epoch} loss {row['loss']:.4f} lr {row['lr']:.2e} "
                f"val ROC-AUC {row['val_roc_auc']:.4f} PR-AUC {row['val_pr_auc']:.4f} ({row['seconds']:.1f}s)")
        bar.set_postfix(loss=f"{row['loss']:.3f}", val_auc=f"{row['val_roc_auc']:.3f}",
                        best=f"{state.best['val_roc_auc']:.3f}")
    bar.close()
    run.plot_curves(state.history)
    finished = state.epoch >= args.max_epoch
    run.log(f"{'finished' if finished else f'stopped after epoch {state.epoch} (continue with --resume)'}: "
            f"best epoch {state.best['epoch']} val ROC-AUC {state.best['val_roc_auc']:.4f}; {run_dir}")
    return {"run_dir": str(run_dir), "epoch": state.epoch, "finished": finished, "best": state.best}


def train_one_epoch(model, loss_fn, optimizer, scheduler, train_ds, sampler, args, device, epoch) -> dict[str, float]:
    """One pass over the balanced batches; returns the mean of each loss term."""
    model.train()
    sums: dict[str, float] = {}
    steps = 0
    for step, idx in enumerate(sampler):
        x, y = train_ds.batch(idx)
        x, y = x.to(device, non_blocking=True), y.to(device)  # x [B, C, T, H, W], y [B]
        out = model(x)
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


def restore(path: Path, model, optimizer, scheduler, model_cfg: ModelConfig) -> TrainState:
    """Load model, optimiser, scheduler and RNG state of checkpoint_last for an exact continuation."""
    ckpt = load_checkpoint(path)
    if ckpt["model_config"] != dataclasses.asdict(model_cfg):
        changed = sorted(k for k, v in dataclasses.asdict(model_cfg).items() if ckpt["model_config"].get(k) != v)
        raise MateError(f"{path}: the model options changed since the run started ({', '.join(changed)}); "
                        "resume with the same options or start a new --exp_name")
    if "optimizer" not in ckpt:
        raise MateError(f"{path}: holds no optimiser state; cannot resume from it")
    model.load_state_dict(ckpt["model"], strict=True)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    return TrainState(epoch=ckpt["epoch"], best=dict(ckpt["best"]), history=list(ckpt["history"]))
