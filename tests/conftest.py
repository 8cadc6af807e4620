"""Shared pytest set-up: the repository root on sys.path, seeded RNGs, a headless matplotlib."""
import contextlib
import importlib.util
import io
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")
# One intra-op thread, here and in the scripts the tests start: on a 2-core machine OpenMP teams that
# spin against each other (or against another job) slow small ops by orders of magnitude, and one
# thread gives the same numbers on every run.
os.environ["OMP_NUM_THREADS"] = "1"
# hypothesis (tests/test_fuzz.py) keeps no example database (database=None) and its caches out of the tree
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "mate-hypothesis"))
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


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory):
    """The first 30 frames (3 s at 10 fps) of the real clip, as MJPG AVI: one X3D-L window of 2.67 s, so the
    tests that run X3D-L at 320 x 320 on the CPU run it on one clip instead of three."""
    import cv2

    path = tmp_path_factory.mktemp("clip") / "vtest_short.avi"
    cap = cv2.VideoCapture(str(TEST_DATA / "vtest_clip.avi"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), cap.get(cv2.CAP_PROP_FPS),
                             (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
    for _ in range(30):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    return path


@dataclass
class Finished:
    """What a script run left: its exit code and what it printed (as subprocess.CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


def load_script(script: str) -> ModuleType:
    """A top-level script as a module (under a private name: `test.py` must not shadow Python's own
    `test` package), loaded once; tests reach the scripts only through here and `scripts.*`."""
    name = "mate_script_" + Path(script).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def run_script(script: str, *args, cwd: Path | None = None) -> Finished:
    """Run a top-level script as `python <script> <args>` would, but in this process (no new
    interpreter, no second torch import): its `main` through scripts.core.cli.run, exit code and output
    captured. Exceptions other than the CLI's own exits propagate, with their traceback."""
    from scripts.core.cli import run

    main = load_script(script).main
    out, err = io.StringIO(), io.StringIO()
    old_cwd = Path.cwd()
    try:
        os.chdir(cwd or ROOT)  # as the subprocess runs did
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run(main, [str(a) for a in args])
                code = 0
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        os.chdir(old_cwd)
    return Finished(code, out.getvalue(), err.getvalue())


def shell(command: str, cwd: Path) -> Finished:
    """A command line as a user types it (`python makelist.py --features_dir ...`), run by run_script."""
    python, script, *args = shlex.split(command)
    assert python == "python", f"expected 'python <script> ...', got {command!r}"
    return run_script(script, *args, cwd=cwd)


def run_subprocess(script: str, *args, cwd: Path | None = None, env: dict | None = None):
    """Run a top-level script in a new interpreter, for the few tests of the process boundary itself."""
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


# The files that take longest go first, so that with pytest-xdist (make test: -n auto --dist loadfile) no
# worker starts a long file while the other has nothing left (measured: make test's --durations).
SLOW_FIRST = ("test_seed_commands.py", "test_gpu_script.py", "test_peers.py", "test_ablation_table.py", "test_training.py", "test_run_reliability.py",
              "test_folds.py", "test_extractor.py", "test_paper_model.py", "test_diagnostics.py", "test_sequence.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: file order kept otherwise


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: needs real-time seconds or runs a benchmark script; make test-slow runs "
                                       "these, make test leaves them out")
