"""The training loop (docs/design.md §5): AdamW, warm-up then cosine decay, balanced batches from features
held in memory, validation every epoch, best checkpoint by validation ROC-AUC, exact `--resume`.

A run folder has one job at a time: `run_training` checks the options, the lists and --pretrained_ckpt
without writing anything, then takes the folder's lock (scripts/core/locks.py) and holds it to the end, so
a second job on the same --exp_name is refused naming the first, and a job killed at any moment leaves
the files of its last finished epoch (every write is atomic, scripts/core/fileio.py).
--resume's rules and the restore of a run's state: scripts/training/resume.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR
from tqdm import tqdm

from scripts.models.checkpoint import load_checkpoint, save_checkpoint
from scripts.models.history import current_format
from scripts.core.devices import resolve_device, thread_governor, use_threads
from scripts.dataset import BalancedBatchSampler, FeatureDataset
from scripts.data.manifest import read_manifest
from scripts.core.errors import MateError
from scripts.data.feature_settings import describe, first_difference, read_extraction
from scripts.core.fileio import remove_stale_temps
from scripts.core.locks import LOCK_NAME, exclusive_lock
from scripts.models.losses import LossConfig, MateLoss
from scripts.evaluation.metrics import f1_threshold, pr_auc, roc_auc
from scripts.model import ModelConfig, build_model, config_for_variant, count_parameters, feature_motion_map, init_from_checkpoint
from scripts.models.config import overrides_from_options
from scripts.option import options_to_dict
from scripts.core.runlog import RunFolder, git_commit, tensorboard_writer
from scripts.core.fileio import write_json
from scripts.evaluation.evaluation import ORACLE_FILE
from scripts.training.oracle import Oracle
from scripts.data.crops import count_videos
from scripts.models import crop_scoring
from scripts.models.crop_scoring import SCORE_MEAN
from scripts.training.resume import (PLOT_FILES, RUN_FILES, TrainState, check_disjoint, check_resume_features,
                                     check_resume_options, check_training_options, prepare_run_dir, restore,
                                     rng_state, set_rng_state)
from scripts.evaluation.scoring import average_crops, score_dataset

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def model_overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the model flags set for args.model_variant (None = keep the variant's value), derived
    from the config fields (scripts/models/config.py: overrides_from_options); a flag the variant has no
    field for, given, is a MateError (a --config file's value counts as given)."""
    return overrides_from_options(args.model_variant, vars(args))


def model_config_from_args(args: argparse.Namespace, in_channels: int) -> ModelConfig:
    """The variant's config with the flags that were set (see model_overrides_from_args)."""
    return config_for_variant(args.model_variant, in_channels=in_channels, **model_overrides_from_args(args))


def loss_config_from_args(args: argparse.Namespace) -> LossConfig:
    """Every LossConfig field from its flag (scripts/option.py: get_loss_parser); --no_triplet zeroes its weight."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(LossConfig)}
    return LossConfig(**{**values, **({"lambda_triplet": 0.0} if args.no_triplet else {})})


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


def read_training_extraction(train_entries, val_entries, args: argparse.Namespace) -> dict:
    """The extraction settings of the training features (all videos agree), checked on validation."""
    record = read_extraction(train_entries, source=args.train_list)
    val = read_extraction(val_entries, source=args.val_list)
    key = first_difference(record["settings"] or {}, val["settings"] or {})
    if key is not None or val["source"] != record["source"]:
        key = key or "sidecars"
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
    model_config_from_args(args, in_channels=1)  # refuse model options that do not fit, before any work (C comes later)
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
    trainer = RunTrainer(run_dir, args, loss_cfg, pretrained, entries)
    bar = tqdm(trainer.remaining(), desc=args.exp_name, unit="epoch", disable=args.no_progress,
               initial=trainer.state.epoch, total=args.max_epoch)
    governor = thread_governor(args.threads)  # --threads 0: chosen again after every epoch
    for epoch in bar:
        row = trainer.epoch(epoch)
        bar.set_postfix(loss=f"{row['loss']:.3f}", val_auc=f"{row['val_roc_auc']:.3f}",
                        best=f"{trainer.state.best['val_roc_auc']:.3f}")
        change = governor.update() if governor is not None else None
        if change:
            trainer.run.log(change)
    bar.close()
    return trainer.finish()


class RunTrainer:
    """One run folder's training, epoch by epoch: train_in runs one alone; the fold study (scripts/training/
    fold_study.py) runs many side by side over one feature cache, each exactly as it would run alone.

    `data` = (train, val, extraction) shares features already loaded; without it they are read from the lists.
    """

    def __init__(self, run_dir: Path, args: argparse.Namespace, loss_cfg: LossConfig,
                 pretrained: dict[str, Any] | None, entries: tuple[list, list], data: tuple | None = None):
        self.args, self.run_dir = args, run_dir
        last_path = run_dir / "checkpoint_last.pth"
        stored = prepare_run_dir(args, run_dir)
        options = options_to_dict(args)
        if stored is not None:
            check_resume_options(stored["options"], options, source=last_path)  # before the features load
            options["pretrained_ckpt"] = stored["options"].get("pretrained_ckpt")  # how the run began stays recorded
        self.board = tensorboard_writer(run_dir) if args.tensorboard else None  # a missing package: before any work
        seed_everything(args.seed)
        self.device = device = resolve_device(args.device)
        threads = use_threads(args.threads)  # before the features load: they keep our own cores busy
        self.train_ds, self.val_ds, extraction = data if data is not None else load_data(args, *entries)
        train_ds = self.train_ds
        self.oracle = None
        if args.oracle_test_list is not None:  # the peers' test-set selection, recorded beside ours
            self.oracle = Oracle(args, entries[0], args.frames_per_snippet)
            self.oracle.check_shape(train_ds)
        feature = feature_record(args, train_ds, extraction)
        if stored is not None:
            check_resume_features(stored["feature"], feature, source=last_path, train_list=args.train_list)
        model_cfg = model_config_from_args(args, in_channels=train_ds.feature_shape[0])
        self.model_cfg = model_cfg
        model = build_model(model_cfg)
        if pretrained is not None:
            init_from_checkpoint(model, model_cfg, pretrained, source=args.pretrained_ckpt)
        self.model = model = model.to(device)
        self.loss_fn = MateLoss(loss_cfg)
        self.optimizer = build_optimizer(model, lr=args.lr, weight_decay=args.weight_decay, device=device)
        self.sampler = BalancedBatchSampler(train_ds.labels, batch_size=args.batch_size, seed=args.seed)
        self.scheduler = build_scheduler(self.optimizer, steps_per_epoch=len(self.sampler), max_epoch=args.max_epoch,
                                         warmup_epochs=args.warmup_epochs)
        self.state, notes = TrainState(), []
        if stored is not None:
            self.state, notes = restore(stored, last_path, model, self.optimizer, self.scheduler, model_cfg,
                                        max_epoch=args.max_epoch, steps_per_epoch=len(self.sampler))
        elif args.resume:
            notes = ["--resume: no checkpoint_last.pth yet, so the run starts from scratch"]
        self.rng = rng_state()  # this run's torch RNG (dropout), kept apart from other runs'
        self.run = run = RunFolder(run_dir, quiet=args.no_progress)
        run.write_config(options, model_config=dataclasses.asdict(model_cfg),
                         loss_config=dataclasses.asdict(self.loss_fn.cfg), feature=feature,
                         parameters=count_parameters(model), device=str(device))
        for note in notes:
            run.log(note)
        verb = "resuming" if stored is not None else "starting"
        run.log(f"{verb} {run_dir} at epoch {self.state.epoch + 1}/{args.max_epoch}: "
                f"{args.model_variant} ({count_parameters(model):,} parameters) on {device} ({threads}), "
                f"{count_videos(train_ds.entries, 'train')} / {count_videos(self.val_ds.entries, 'val')}, features {list(train_ds.feature_shape)}, "
                f"git {git_commit() or 'unknown'}"
                + (f", initialised from {args.pretrained_ckpt}" if pretrained is not None else ""))
        # what every checkpoint holds (today's format, scripts/models/history.py)
        self.common = dict(format=current_format(), model_config=dataclasses.asdict(model_cfg),
                           loss_config=dataclasses.asdict(loss_cfg), options=options, feature=feature)

    def epoch_with_own_rng(self, epoch: int) -> dict[str, Any]:
        """`epoch` with this run's torch RNG states (CPU, and CUDA where used) swapped in and kept
        (several runs in one process)."""
        set_rng_state(self.rng)
        row = self.epoch(epoch)
        self.rng = rng_state()
        return row

    def catch_up(self) -> None:
        """Take the run up at its checkpoint_last.pth when another process (a fold study's worker) trained
        its later epochs: the exact continuation --resume makes, without a log line."""
        path = self.run_dir / "checkpoint_last.pth"
        stored = load_checkpoint(path) if path.is_file() else {"epoch": 0}
        if stored["epoch"] > self.state.epoch:
            self.state, _ = restore(stored, path, self.model, self.optimizer, self.scheduler, self.model_cfg,
                                    max_epoch=self.args.max_epoch, steps_per_epoch=len(self.sampler))
            self.rng = rng_state()

    def reopen_board(self) -> None:
        """A TensorBoard writer of this process's own (a forked process has none of its parent's threads)."""
        if self.board is not None:
            self.board = tensorboard_writer(self.run_dir)

    def close_board(self) -> None:
        if self.board is not None:
            self.board.close()

    def remaining(self) -> range:
        """The epochs this job trains: after the restored one, up to --stop_epoch or --max_epoch."""
        args = self.args
        return range(self.state.epoch + 1, min(args.max_epoch, args.stop_epoch or args.max_epoch) + 1)

    def epoch(self, epoch: int) -> dict[str, Any]:
        """Train, validate, save and log one epoch; returns its metrics.csv row."""
        args, state, run = self.args, self.state, self.run
        start = time.time()
        self.sampler.set_epoch(epoch)
        terms = train_one_epoch(self.model, self.loss_fn, self.optimizer, self.scheduler, self.train_ds,
                                self.sampler, args, self.device, epoch)
        row = {"epoch": epoch, **terms, "lr": self.optimizer.param_groups[0]["lr"],
               **validate(self.model, self.val_ds, args, self.device, sequence=self.train_ds.is_sequence),
               **(self.oracle.score(self.model, self.device) if self.oracle else {}),
               "seconds": round(time.time() - start, 3)}
        state.epoch = epoch
        state.history.append(row)
        save_epoch(run, self.model, self.optimizer, self.scheduler, state, self.common, row,
                   select_from=min(self.args.select_from_epoch, self.args.max_epoch))
        run.write_metrics(state.history)
        if self.oracle:
            write_json(run.file(ORACLE_FILE), self.oracle.record(state.history, state.best["epoch"]))
        if self.board is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, float):
                    self.board.add_scalar(key, value, epoch)
            self.board.flush()
        run.log(f"epoch {epoch}/{args.max_epoch} loss {row['loss']:.4f} lr {row['lr']:.2e} "
                f"val ROC-AUC {row['val_roc_auc']:.4f} PR-AUC {row['val_pr_auc']:.4f} ({row['seconds']:.1f}s)")
        return row

    def finish(self) -> dict[str, Any]:
        """Close the curves and the log; returns the run's summary."""
        args, state = self.args, self.state
        self.close_board()
        if not args.no_plots:
            self.run.plot_curves(state.history)
        finished = state.epoch >= args.max_epoch
        self.run.log(f"{'finished' if finished else f'stopped after epoch {state.epoch} (continue with --resume)'}: "
                     f"best epoch {state.best['epoch']} val ROC-AUC {state.best['val_roc_auc']:.4f}; {self.run_dir}")
        return {"run_dir": str(self.run_dir), "epoch": state.epoch, "finished": finished, "best": state.best}


def feature_record(args: argparse.Namespace, train_ds: FeatureDataset, extraction: dict) -> dict[str, Any]:
    """What the checkpoint records of the training features: shape, layout, how they are read, and how
    they were made (scripts/data/feature_settings.py)."""
    return {"shape": list(train_ds.feature_shape), "sequence": train_ds.is_sequence, "crop_mode": args.crop_mode,
            "num_segments": args.num_segments, "frames_per_snippet": args.frames_per_snippet,
            "extraction": extraction}


def validate(model, val_ds: FeatureDataset, args: argparse.Namespace, device, *, sequence: bool) -> dict[str, float]:
    """One epoch's validation: ROC-AUC and PR-AUC of the video scores, and the alarm threshold."""
    view, val = average_crops(val_ds, score_dataset(model, val_ds, device=device, batch_size=args.eval_batch_size),
                              source=str(args.val_list))  # per-crop lists: the mean over a video's crops
    labels = view.labels.numpy()
    return {"val_roc_auc": roc_auc(labels, val.video), "val_pr_auc": pr_auc(labels, val.video),
            "val_threshold": val_threshold(labels, val, sequence=sequence)}


def save_epoch(run: RunFolder, model, optimizer, scheduler, state: TrainState, common: dict[str, Any],
               row: dict[str, Any], *, select_from: int = 1) -> None:
    """checkpoint_best.pth when the epoch (from epoch `select_from` on) beats the best validation ROC-AUC,
    then checkpoint_last.pth: best before last, so a job killed between the two resumes from the previous
    last and redoes the epoch."""
    metrics = {k: row[k] for k in ("val_roc_auc", "val_pr_auc", "loss", "val_threshold")}
    epoch = row["epoch"]
    if epoch >= select_from and row["val_roc_auc"] > state.best["val_roc_auc"]:
        state.best = {"epoch": epoch, **metrics}
        save_checkpoint(run.file("checkpoint_best.pth"),
                        {"model": model.state_dict(), **common, "epoch": epoch, "metrics": metrics})
    save_checkpoint(run.file("checkpoint_last.pth"), {
        "model": model.state_dict(), **common, "epoch": epoch, "metrics": metrics,
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "rng": rng_state(), "best": state.best, "history": state.history})


def val_threshold(labels: np.ndarray, val, *, sequence: bool) -> float:
    """The alarm threshold test.py --video marks intervals with, chosen on validation (never on test) on
    the kind of score its curve shows (docs/design.md §6): the F1-maximising threshold of the video scores
    for map features (the curve scores maps of consecutive clips), of each video's peak snippet score for
    sequences (a video is flagged when any snippet reaches it)."""
    scores = np.array([s.max() for s in val.snippets]) if sequence else val.video
    return round(f1_threshold(labels, scores), 6)


def non_finite_loss(loss, x: torch.Tensor, idx, train_ds, args, epoch: int, step: int) -> MateError:
    """One line for a loss that became NaN or Inf: the batch's most extreme feature file, with its largest
    |value|, and the flags that decide it (a flag's own NaN is refused when it is parsed)."""
    peak = x.detach().abs().flatten(1).amax(dim=1)  # [B]
    worst = int(peak.argmax())
    return MateError(f"{train_ds.entries[idx[worst]].path}: the loss became {float(loss)} at epoch {epoch}, step "
                     f"{step} on a batch holding this file, whose largest |value| is {float(peak[worst]):.3g} (run "
                     f"{args.exp_name}); check the features for extreme values, or lower --lr ({args.lr:g})")


def train_one_epoch(model, loss_fn, optimizer, scheduler, train_ds, sampler, args, device, epoch) -> dict[str, float]:
    """One pass over the balanced batches; returns the mean of each loss term."""
    model.train()
    sums: dict[str, float] = {}
    steps = 0
    motion_key = feature_motion_map(model)
    for step, idx in enumerate(sampler):
        x, y = train_ds.batch(idx)
        if device.type == "cuda":
            x = x.pin_memory()  # page-locked, so the non_blocking copy below overlaps the GPU's work
        x, y = x.to(device, non_blocking=True), y.to(device)  # x [B, C, T, H, W], y [B]
        # the MotionMap of these features, computed once per video (None: the model computes its own)
        motion = train_ds.motion_maps(idx, *motion_key) if motion_key and train_ds.crop_mode != SCORE_MEAN else None
        out = crop_scoring.forward(model, x, motion, train_ds.crop_mode)  # score_mean: each crop scored, averaged
        loss, terms = loss_fn(out.video_logit, out.snippet_logits, out.embedding, y)
        if not torch.isfinite(loss):
            raise non_finite_loss(loss, x, idx, train_ds, args, epoch, step)
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
