"""Figures without pyplot state: an Agg-backed Figure per plot, saved atomically as PNG."""
from __future__ import annotations

from pathlib import Path

from scripts.core.fileio import atomic_write


def new_figure(width: float = 6.0, height: float = 4.0, dpi: int = 110):
    """A matplotlib Figure on its own Agg canvas (no display, no global pyplot figure list)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Lay out and write `fig` as PNG via a temp file, so a crash never leaves half an image."""
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
