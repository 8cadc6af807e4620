"""The fast paths compute what the plain formulas compute (scripts/models/fast_paths.py, docs/speed.md).

Single functions are compared value for value and gradient for gradient; then whole runs: main.py as
shipped (fast kernels, the MotionMap from the data set's cache, the fused AdamW) against main.py with
every fast path switched off, on the same synthetic videos, loss by loss and score by score.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import load_script
from scripts.training import training
from scripts.models.checkpoint import load_checkpoint
from scripts.dataset import FeatureDataset
from scripts.models.fast_paths import elu_plus_one, linear_attention, plain, plain_paths
from scripts.data.manifest import read_manifest
from scripts.model import build_model, config_for_variant, feature_motion_map
from scripts.models.motion import motion_map
from scripts.evaluation.scoring import score_dataset
from scripts.data.synthetic import make_synthetic


def grads(fn, *inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*inputs)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), [t.grad for t in inputs]


@pytest.mark.parametrize("heads,mask", [(1, False), (2, False), (4, False), (4, True), (8, True)])
def test_linear_attention_equals_the_per_head_formula(heads, mask):
    torch.manual_seed(0)
    G, L, D = 6, 25, 32 if heads > 1 else 8
    q, k, v = torch.randn(3, G, L, D).unbind(0)
    key_mask = (torch.rand(G, L) > 0.3).float() if mask else None
    fast_out, fast_grads = grads(lambda a, b, c: linear_attention(a, b, c, heads, key_mask), q, k, v)
    with plain_paths():
        assert plain()
        plain_out, plain_grads = grads(lambda a, b, c: linear_attention(a, b, c, heads, key_mask), q, k, v)
    assert not plain()
    assert torch.allclose(fast_out, plain_out, rtol=1e-5, atol=1e-6)
    for f, p in zip(fast_grads, plain_grads):
        assert torch.allclose(f, p, rtol=1e-4, atol=1e-6)


def test_elu_plus_one_and_its_slope():
    x = torch.tensor([-8.0, -2.0, -1e-3, 0.0, 1e-3, 0.5, 7.0])
    y, (g,) = grads(elu_plus_one, x)
    y_ref, (g_ref,) = grads(lambda t: F.elu(t) + 1, x)
    assert torch.allclose(y, y_ref) and (y > 0).all()
    assert torch.allclose(g, g_ref, atol=1e-7)


def test_motion_maps_of_the_data_set_are_the_models(tmp_path):
    make_synthetic(tmp_path, n_train=20, n_test=8, seed=3, progress=False)
    ds = FeatureDataset(read_manifest(tmp_path / "train.txt"), cache_dtype="float16", progress=False)
    model = build_model(config_for_variant("fast"))
    key = feature_motion_map(model)
    assert key == (2, 1e-6)
    idx = [5, 0, 17]
    cached = ds.motion_maps(idx, *key)
    x, _ = ds.batch(idx)
    assert torch.equal(cached, model.motion_map(x))  # the very numbers, not merely close
    assert torch.equal(cached, motion_map(x))
    assert ds.motion_maps(idx, *key) is not cached and torch.equal(ds.motion_maps(idx, *key), cached)
    for variant, kw in (("mil", {}), ("paper_fast", {}), ("fast", {"use_motion_map": False})):
        assert feature_motion_map(build_model(config_for_variant(variant, **kw))) is None


def plain_training(monkeypatch) -> None:
    """Every fast path off: plain formulas, the model's own MotionMap in every step, AdamW per tensor."""
    monkeypatch.setattr(FeatureDataset, "motion_maps", lambda self, *args: None)
    monkeypatch.setattr(training, "build_optimizer", lambda model, *, lr, weight_decay, device: torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=weight_decay, foreach=False))


def read_losses(run: Path) -> list[float]:
    with open(run / "metrics.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("variant", ["fast", "base"])
def test_training_and_scores_equal_the_plain_path(variant, tmp_path, monkeypatch):
    make_synthetic(tmp_path / "data", n_train=32, n_test=16, seed=1, feature_dim=48, progress=False)
    main = load_script("main.py").main
    runs = tmp_path / "runs"
    args = ["--train_list", tmp_path / "data" / "train.txt", "--val_list", tmp_path / "data" / "test.txt",
            "--runs_dir", runs, "--model_variant", variant, "--batch_size", "16", "--lr", "0.002",
            "--max_epoch", "2", "--warmup_epochs", "0", "--no_progress", "--cache_dtype", "float16"]
    main([str(a) for a in args + ["--exp_name", "fast_paths"]])
    with monkeypatch.context() as m:
        plain_training(m)
        with plain_paths():
            main([str(a) for a in args + ["--exp_name", "plain"]])
    fast_losses, plain_losses = read_losses(runs / "fast_paths"), read_losses(runs / "plain")
    assert len(fast_losses) == 2
    assert fast_losses == pytest.approx(plain_losses, rel=1e-5)

    ds = FeatureDataset(read_manifest(tmp_path / "data" / "test.txt"), progress=False)
    ckpt_fast = load_checkpoint(runs / "fast_paths" / "checkpoint_last.pth")
    ckpt_plain = load_checkpoint(runs / "plain" / "checkpoint_last.pth")
    # Adam divides by the root of the squared gradients, so float rounding in a near-zero gradient can
    # move a weight by up to lr per step; after 4 steps every weight is within a quarter of one step
    for name, value in ckpt_fast["model"].items():
        assert (value - ckpt_plain["model"][name]).abs().max() < 0.25 * 0.002, name
    model = build_model(config_for_variant(variant, in_channels=48))
    model.load_state_dict(ckpt_fast["model"])
    fast = score_dataset(model, ds, batch_size=8)
    with plain_paths():
        with monkeypatch.context() as m:
            plain_training(m)
            reference = score_dataset(model, ds, batch_size=8)
    assert torch.allclose(torch.tensor(fast.video), torch.tensor(reference.video), rtol=1e-5, atol=1e-6)
    assert torch.allclose(torch.tensor(fast.embeddings), torch.tensor(reference.embeddings), rtol=1e-4, atol=1e-5)
