"""Which device a script runs on: one rule for training, scoring and extraction.

`auto` picks CUDA when present, else the CPU; under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the
environment) `auto` and `cuda` mean this rank's own GPU, cuda:LOCAL_RANK. Asking for a CUDA device the
machine lacks is a user fault (MateError), not a crash.
"""
from __future__ import annotations

import os
from typing import Mapping

import torch

from scripts.errors import MateError


def torchrun_env(env: Mapping[str, str] = os.environ) -> tuple[int, int, int] | None:
    """(rank, world_size, local_rank) under torchrun, else None."""
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))


def resolve_device(name: str, env: Mapping[str, str] = os.environ) -> torch.device:
    """auto: CUDA when present; under torchrun, auto and cuda mean this rank's GPU, cuda:LOCAL_RANK."""
    dist = torchrun_env(env)
    if name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", dist[2] if dist else 0)
    if name == "auto":
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MateError(f"--device: '{name}' is not a device (use auto, cpu, cuda or cuda:<i>)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MateError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MateError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device
