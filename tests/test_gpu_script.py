"""benchmarks/gpu.sh, the prepared GPU measurement (issue #20): no device is lent here, so its CPU fallback
(`cpu tiny`: the same four steps on a few videos, clips and iterations) runs, and prints each figure.
A benchmark script, 20 s: in make test-slow."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_gpu_script_cpu_fallback(tmp_path):
    env = {**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "gpu")}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "cpu", "tiny"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "== device cpu, scale tiny" in out and "fast" in out
    assert "fold study: 2 folds x 1 epochs in " in out and "150 epochs ~ " in out
    assert "end-to-end   :" in out and "clips/s" in out and out.rstrip().endswith("== done")
    assert "--video " in out and "2 stream points, 2 video points, max |score difference| " in out
    assert Path(tmp_path / "gpu/runs/study_s0_fold1/checkpoint_best.pth").is_file()
