"""Shared pytest set-up: the repository root on sys.path, seeded RNGs, a headless matplotlib."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")
# One intra-op thread, here and in the scripts the tests start: on a 2-core machine OpenMP teams that
# spin against each other (or against another job) slow small ops by orders of magnitude, and one
# thread gives the same numbers on every run.
os.environ["OMP_NUM_THREADS"] = "1"
SHARED_DATA = ROOT / "data" / "ucf_crime"  # the split and annotation files the repo ships
TEST_DATA = ROOT / "tests" / "data"  # the short real clip
PUBLISHED = ROOT / "data" / "published"  # the artefacts of AIx699/MATE (MIT licence, see NOTICE)


@pytest.fixture(autouse=True)
def _seeded():
    np.random.seed(0)
    try:
        import torch
        torch.manual_seed(0)
        torch.set_num_threads(1)
    except ImportError:
        pass
    yield


def run_script(script: str, *args: str, cwd: Path | None = None):
    """Run a top-level script in a subprocess, as a user would; returns the CompletedProcess."""
    import subprocess
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=600)
