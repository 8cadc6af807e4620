"""Checkpoints hold tensors and plain data only (scripts/model.py rebuilds the model from one: model_from_checkpoint): they load with `weights_only=True`, and the model
config they store is all test.py needs to rebuild the model (strict state-dict matching).

What a checkpoint written by main.py holds:
    format        current_format() (scripts/models/history.py): how to read the rest
    model         the state dict
    model_config  `asdict` of the variant's config, every key (scripts/model.py: MateConfig, MilConfig)
    loss_config   `asdict` of the LossConfig it was trained with
    options       the resolved command-line options; feature: the features' shape, layout and extraction
    epoch, metrics (validation ROC-AUC, PR-AUC, loss); checkpoint_last also optimizer, scheduler, rng,
    best, history (for --resume)
Loading never fills a missing model-config key with today's default: a missing or unknown key, or a
newer format, is refused in one line naming the file and the key. An older format is brought to today's
by the rows of the history table (scripts/models/history.py), which say for each added key the value its
older files get; `migrated_from_format` then records where it came from.

The authors' published weights (data/published/MATE_base.pkl, a plain state dict of the published
`Model`) load too: `load_checkpoint` recognises the published key names and shapes and wraps them as
a checkpoint of variant paper_base (paper_fast for dim 8), with the shared UCF-Crime feature format
and no epoch or validation metrics (None / NaN: unknown).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import torch

from scripts.core.errors import MateError
from scripts.core.fileio import atomic_write
from scripts.models.config import PAPER_VARIANTS, VARIANTS, ModelConfig, config_class, config_fields, config_for_variant
from scripts.models.history import current_format, migrate
from scripts.models.paper_model import PaperMate

# The features the published weights were trained on: X3D-L maps [192, 16, 10, 10], one per video
# (the element-wise maximum over its 16-frame clips), single crop (data/published/README.md).
PUBLISHED_FEATURE = {"shape": [192, 16, 10, 10], "sequence": False, "crop_mode": "mean",
                     "num_segments": None, "frames_per_snippet": 16,
                     # no sidecars: the published preprocessing is assumed (feature_settings.PUBLISHED)
                     "extraction": {"source": "none", "settings": None}}
UNRELEASED_MODULE = "motion_attn_mlp"  # in MATE_fast.pkl only; its code was never published


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` (a dict of tensors, state dicts and plain data) atomically."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with `weights_only=True`; every fault is a MateError naming it.
    A published plain state dict comes back wrapped as a checkpoint (see `published_checkpoint`)."""
    path = Path(path)
    if not path.is_file():
        raise MateError(f"{path}: checkpoint not found")
    state = safe_torch_load(path, "checkpoint", "give the .pth / .pkl that main.py or the authors wrote",
                            readable="MATE checkpoint")
    if is_plain_state_dict(state):
        return check_finite_weights(published_checkpoint(state, source=path), path)
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise MateError(f"{path}: not a MATE checkpoint (no model weights and config)")
    state = read_format(state, source=path)
    stored_model_config(state["model_config"], source=path)  # refuse a bad config here, whoever reads it
    return check_finite_weights(state, path)


def check_finite_weights(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """A checkpoint whose weights hold NaN or Inf (a run that diverged, a damaged file) scores nothing
    meaningful: refused here, naming a tensor, rather than failing later in a metric."""
    bad = [k for k, v in state["model"].items()
           if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise MateError(f"{path}: {len(bad)} weight tensor(s) hold NaN or Inf (first: {bad[0]}); a run that "
                        "diverged or a damaged file: use an earlier checkpoint")
    return state


def safe_torch_load(path: Path, what: str, hint: str, readable: str | None = None) -> Any:
    """torch.load on the CPU with weights_only=True, every fault one MateError line: a file that is not a
    torch file (text, empty, other binary) named by its first bytes, an unpickling fault by its first line,
    and a file holding Python objects by that fact alone (never torch's advice to load it unsafely)."""
    kind = file_kind(path)
    if kind is not None:
        raise MateError(f"{path}: not a PyTorch {what} ({kind}); {hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler raises KeyError, IndexError, ... on damaged files
        text = str(exc).strip()
        first = text.splitlines()[0][:160] if text else type(exc).__name__
        if "Unsupported operand" in text:  # a pickle.dump'ed file: opcodes torch.save never writes
            first = "a plain Python pickle, not a file torch.save wrote"
        elif "weights_only" in text or "Weights only" in text:
            first = "it holds Python objects other than tensors and plain data, which MATE does not load"
        raise MateError(f"{path}: not a readable {readable or what} ({type(exc).__name__}: {first})") from None


def file_kind(path: Path) -> str | None:
    """What a file that cannot be a checkpoint is, by its first bytes (None: a zip or pickle, try it).
    torch.save writes a zip archive (PK..) or, in the legacy format, a pickle (0x80 + protocol)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return None
    try:
        text = head.decode("utf-8")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", head, 0, 1, "NUL byte")
    except UnicodeDecodeError:
        return f"unknown binary content starting {head[:8].hex()}"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"a text file starting {first!r}"


def read_format(state: dict[str, Any], *, source: str | Path) -> dict[str, Any]:
    """The checkpoint as today's format: an older one migrated by the history table's rows after it
    (scripts/models/history.py), a newer or unknown one refused."""
    version, current = state.get("format", 1), current_format()
    if version == current:
        return state
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < current:
        raise MateError(f"{source}: checkpoint format {version!r} is not one this MATE reads (1 to {current}; "
                        "a newer MATE wrote it?)")
    config = state["model_config"]
    if not isinstance(config, dict):
        raise MateError(f"{source}: model config is not a mapping ({type(config).__name__})")
    return {**state, "format": current, "model_config": migrate(config, version), "migrated_from_format": version}


def stored_model_config(stored: Any, *, source: str | Path) -> ModelConfig:
    """The config a checkpoint stores, rebuilt key for key: a missing or unknown key is a MateError
    naming the file and the key, never filled with today's default or dropped."""
    if not isinstance(stored, dict):
        raise MateError(f"{source}: model config is not a mapping ({type(stored).__name__})")
    if "variant" not in stored:
        raise MateError(f"{source}: model config lacks 'variant'; not a model MATE can rebuild")
    if stored["variant"] not in VARIANTS:
        raise MateError(f"{source}: model config has variant {stored['variant']!r}, not one of "
                        f"{', '.join(VARIANTS)} (made by another MATE version?)")
    fields = config_fields(stored["variant"])
    missing = [k for k in fields if k not in stored]
    if missing:
        raise MateError(f"{source}: model config lacks {', '.join(map(repr, missing))} (made by an older MATE); "
                        "retrain with this version, or score it with the MATE version that made it")
    unknown = sorted(k for k in stored if k not in fields)
    if unknown:
        raise MateError(f"{source}: model config has unknown key(s) {', '.join(map(repr, unknown))} for variant "
                        f"{stored['variant']} (made by a newer or another MATE); use the MATE version that made it")
    try:
        return config_class(stored["variant"])(**stored)
    except MateError as exc:
        raise MateError(f"{source}: {exc}") from None


def is_plain_state_dict(state: Any) -> bool:
    return (isinstance(state, dict) and len(state) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()))


def state_dict_mismatch(expected: Mapping[str, tuple[int, ...]], given: Mapping[str, torch.Tensor]) -> str | None:
    """How `given` differs from the expected keys and shapes, in a few words; None when it fits."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [f"{k} {list(given[k].shape)} (expected {list(expected[k])})"
              for k in expected if k in given and tuple(given[k].shape) != expected[k]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing, e.g. {', '.join(missing[:2])}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {', '.join(unexpected[:2])}")
    if shapes:
        parts.append(f"{len(shapes)} of another shape, e.g. {shapes[0]}")
    return "; ".join(parts) or None


def published_checkpoint(weights: dict[str, torch.Tensor], *, source: str | Path) -> dict[str, Any]:
    """A plain published state dict as a checkpoint of the paper variant whose keys and shapes it has."""
    unreleased = sorted(k for k in weights if f".{UNRELEASED_MODULE}." in k)
    if unreleased:
        module = unreleased[0].split(f".{UNRELEASED_MODULE}.")[0] + f".{UNRELEASED_MODULE}"
        raise MateError(f"{source}: {len(unreleased)} of its tensors belong to {module}, a module whose code "
                        "was never published; MATE cannot rebuild this model and will not guess it")
    mismatch = {}
    for variant in PAPER_VARIANTS[::-1]:  # paper_base first: the one the authors published whole
        cfg = config_for_variant(variant)
        with torch.device("meta"):  # shapes only: no memory, no RNG
            shapes = {k: tuple(v.shape) for k, v in PaperMate(cfg).state_dict().items()}
        mismatch[variant] = state_dict_mismatch(shapes, weights)
        if mismatch[variant] is None:
            nan = float("nan")
            return {"format": current_format(), "model": weights, "model_config": dataclasses.asdict(cfg), "options": {},
                    "feature": dict(PUBLISHED_FEATURE), "epoch": None,
                    "metrics": {"val_roc_auc": nan, "val_pr_auc": nan, "loss": nan},
                    "source": "published state dict (AIx699/MATE model.py)"}
    raise MateError(f"{source}: a plain state dict that is not the published MATE model "
                    f"(against paper_base: {mismatch['paper_base']})")


def output_folder(checkpoint: str | Path, state: dict[str, Any]) -> Path:
    """Where test.py writes by default: the folder of a MATE run's checkpoint; runs/<file stem> for a
    published state dict (never beside the vendored file)."""
    checkpoint = Path(checkpoint)
    return Path("runs") / checkpoint.stem if "source" in state else checkpoint.parent
