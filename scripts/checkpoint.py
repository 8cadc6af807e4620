"""Checkpoints hold tensors and plain data only: they load with `weights_only=True`, and the model
config they store is all test.py needs to rebuild the model (strict state-dict matching)."""
from __future__ import annotations

import dataclasses
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from scripts.errors import MateError
from scripts.fileio import atomic_write
from scripts.model import MateConfig, build_model


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` (a dict of tensors, state dicts and plain data) atomically."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with `weights_only=True`; every fault is a MateError naming it."""
    path = Path(path)
    if not path.is_file():
        raise MateError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MateError(f"{path}: not a readable MATE checkpoint ({first})") from None
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise MateError(f"{path}: not a MATE checkpoint (no model weights and config)")
    return state


def model_from_checkpoint(state: dict[str, Any], *, source: str | Path = "checkpoint") -> tuple[torch.nn.Module, MateConfig]:
    """Rebuild the model from the stored config and load its weights strictly."""
    fields = {f.name for f in dataclasses.fields(MateConfig)}
    unknown = set(state["model_config"]) - fields
    if unknown:
        raise MateError(f"{source}: model config has unknown keys {sorted(unknown)} (made by another version?)")
    cfg = MateConfig(**state["model_config"])
    model = build_model(cfg)
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise MateError(f"{source}: weights do not match the stored model config ({first})") from None
    model.eval()
    return model, cfg
