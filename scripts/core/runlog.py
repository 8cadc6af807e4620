"""The run folder `runs/<exp_name>/` (docs/design.md §6): config.json, train.log, metrics.csv, plots/."""
from __future__ import annotations

import csv
import io
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from scripts.core.errors import MateError
from scripts.core.fileio import write_fault, write_json, write_text
from scripts.core.plots import new_figure, save_figure

LIBRARIES = ("torch", "numpy", "scikit-learn", "scipy", "matplotlib", "pytorchvideo", "opencv-python-headless")


def git_commit(repo: Path | None = None) -> str | None:
    """The checkout's commit (with `-dirty` when it has uncommitted changes), or None outside git."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class RunFolder:
    """Writes one run's files; every file but the append-only log is replaced atomically."""

    def __init__(self, path: str | Path, *, quiet: bool = False):
        self.path = Path(path)
        self.plots = self.path / "plots"
        self.quiet = quiet
        try:
            self.plots.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_fault(self.plots, exc) from None

    def file(self, name: str) -> Path:
        return self.path / name

    def write_config(self, options: dict[str, Any], **extra: Any) -> Path:
        record = {"options": options, **extra, "versions": library_versions(), "git_commit": git_commit(),
                  "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:])}
        return write_json(self.file("config.json"), record)

    def log(self, message: str) -> None:
        """Print (without breaking progress bars) and append a time-stamped line to train.log."""
        if not self.quiet:
            tqdm.write(message)
        try:  # appended, not replaced: a full disk may cut this line short, never an earlier one
            with open(self.file("train.log"), "a") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        except OSError as exc:
            raise write_fault(self.file("train.log"), exc) from None

    def write_metrics(self, history: Sequence[dict[str, Any]]) -> Path:
        """metrics.csv: one row per epoch; columns are the union of the rows' keys, in first-seen order."""
        columns: list[str] = []
        for row in history:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        return write_text(self.file("metrics.csv"), buf.getvalue())

    def plot_curves(self, history: Sequence[dict[str, Any]]) -> list[Path]:
        """plots/loss.png (every loss term) and plots/auc.png (validation ROC-AUC and PR-AUC)."""
        if not history:
            return []
        epochs = [row["epoch"] for row in history]
        written = []
        loss_keys = [k for k in history[0] if k == "loss" or k.startswith("loss_")]
        for name, keys, ylabel in (("loss.png", loss_keys, "training loss"),
                                   ("auc.png", ["val_roc_auc", "val_pr_auc"], "validation")):
            fig = new_figure()
            ax = fig.add_subplot()
            for key in keys:
                ax.plot(epochs, [row.get(key, float("nan")) for row in history], label=key)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{self.path.name}: {ylabel} per epoch", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend()
            written.append(save_figure(fig, self.plots / name))
        return written


def tensorboard_writer(run_dir: Path):
    """A SummaryWriter into <run>/tensorboard/, or one line saying what to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MateError("--tensorboard: the tensorboard package is not installed; pip install -r "
                        "requirements-optional.txt") from None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value
