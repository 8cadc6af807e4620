"""aggregate.py --frame_compare: DeLong and a video bootstrap of two per-frame predictions on one GT."""
import numpy as np
import pytest

from scripts.core.errors import MateError
from scripts.evaluation.metrics import roc_auc
from scripts.evaluation.snippet_outputs import _weighted_auc, frame_compare, write_snippet_scores
from tests.conftest import run_script


def test_weighted_auc_equals_the_auc_of_repeated_frames():
    rng = np.random.default_rng(0)
    y, s = rng.random(50) > 0.6, rng.integers(0, 8, 50) / 8  # ties included
    w = rng.integers(0, 3, 50).astype(float)
    _, groups = np.unique(s, return_inverse=True)
    repeated = roc_auc(np.repeat(y, w.astype(int)), np.repeat(s, w.astype(int)))
    assert _weighted_auc(groups, y, w, groups.max() + 1) == pytest.approx(repeated)


def test_frame_compare_on_a_hand_made_pair(tmp_path):
    """Three videos of 2 snippets (32 frames each); A ranks every anomalous frame first, B does not."""
    gt = np.repeat([0, 1, 0, 0, 1, 0], 16).astype(np.float32)
    a = [np.array([0.1, 0.9]), np.array([0.2, 0.1]), np.array([0.8, 0.3])]
    b = [np.array([0.5, 0.4]), np.array([0.6, 0.1]), np.array([0.7, 0.2])]
    np.save(tmp_path / "gt.npy", gt)
    write_snippet_scores(tmp_path, "_a", ["v1", "v2", "v3"], a, 16)
    np.save(tmp_path / "b.npy", np.repeat(np.concatenate(b), 16).astype(np.float32))  # a peer's pred.npy
    result = frame_compare(tmp_path / "snippet_scores_a.npz", tmp_path / "b.npy", tmp_path / "gt.npy",
                           n_boot=200, seed=0)
    assert result["frames"] == 96 and result["videos"] == 3
    assert result["delong"]["auc_a"] == pytest.approx(1.0)
    assert result["delong"]["auc_b"] == pytest.approx(roc_auc(gt, np.repeat(np.concatenate(b), 16)))
    boot = result["video_bootstrap"]
    assert boot["delta"] == pytest.approx(result["delong"]["delta"]) and boot["ci_low"] <= boot["delta"] <= boot["ci_high"]
    done = run_script("aggregate.py", "--frame_compare", tmp_path / "frame_scores_a.npy", tmp_path / "b.npy",
                      "--gt", tmp_path / "gt.npy", "--videos", tmp_path / "snippet_scores_a.npz", "--n_boot", "100")
    assert done.returncode == 0 and "bootstrap over videos (100 replicates)" in done.stdout, done.stderr
    with pytest.raises(MateError, match="needs their frame counts"):
        frame_compare(tmp_path / "frame_scores_a.npy", tmp_path / "b.npy", tmp_path / "gt.npy")
    np.save(tmp_path / "short.npy", gt[:50])
    with pytest.raises(MateError, match="must cover the same frames"):
        frame_compare(tmp_path / "snippet_scores_a.npz", tmp_path / "b.npy", tmp_path / "short.npy")
