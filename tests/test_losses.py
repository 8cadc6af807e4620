"""Losses on hand-worked examples: the sigmoid is applied once, triplet picks the hardest pairs."""
import math

import pytest
import torch

from scripts.core.errors import MateError
from scripts.models.losses import (LossConfig, MateLoss, batch_hard_triplet, smoothness_loss, sparsity_loss,
                            topk_mil_loss)
from scripts.model import topk_count, topk_mean


def test_bce_on_logits_applies_sigmoid_once():
    loss = MateLoss(LossConfig(lambda_triplet=0.0))
    logits = torch.tensor([0.0, 2.0])
    total, terms = loss(logits, torch.zeros(2, 4), torch.randn(2, 3), torch.tensor([1.0, 0.0]))
    expected = (math.log(2) + math.log(1 + math.exp(2.0))) / 2  # -log σ(0), -log(1 - σ(2))
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert list(terms) == ["bce"]  # weight 0 terms are not computed


def test_batch_hard_triplet_hand_example():
    # class 0 at angles 0 and 60 degrees, class 1 at 90 and 180 degrees on the unit circle
    angles = torch.tensor([0.0, 60.0, 90.0, 180.0]) * math.pi / 180
    z = torch.stack([angles.cos(), angles.sin()], dim=1) * torch.tensor([[1.0], [3.0], [0.5], [2.0]])  # norms vanish
    y = torch.tensor([0.0, 0.0, 1.0, 1.0])
    chord = lambda deg: 2 * math.sin(math.radians(deg) / 2)  # noqa: E731
    # anchor: hardest positive, hardest (nearest) negative
    per_anchor = [chord(60) - chord(90), chord(60) - chord(30), chord(90) - chord(30), chord(90) - chord(120)]
    margin = 0.3
    expected = sum(max(0.0, d + margin) for d in per_anchor) / 4
    assert batch_hard_triplet(z, y, margin).item() == pytest.approx(expected, rel=1e-5)


def test_triplet_without_negatives_is_zero_and_differentiable():
    z = torch.randn(4, 3, requires_grad=True)
    loss = batch_hard_triplet(z, torch.ones(4), 0.5)
    loss.backward()
    assert loss.item() == 0.0 and z.grad is not None


def test_topk_and_snippet_terms():
    logits = torch.tensor([[0.0, 4.0, 2.0, -1.0, 1.0, 3.0, 0.0, 0.0]])  # T = 8
    assert topk_mean(logits, 0.25).item() == pytest.approx(3.5)  # k = 2: mean(4, 3)
    assert topk_mil_loss(logits, torch.tensor([1.0]), 0.25).item() == pytest.approx(math.log(1 + math.exp(-3.5)))
    p = torch.sigmoid(logits)
    assert sparsity_loss(logits, torch.tensor([1.0])).item() == pytest.approx(p.mean().item())
    assert sparsity_loss(logits, torch.tensor([0.0])).item() == 0.0  # normal videos are not sparsified
    assert smoothness_loss(logits).item() == pytest.approx(((p[0, 1:] - p[0, :-1]) ** 2).mean().item())


def test_total_is_weighted_sum():
    torch.manual_seed(0)
    cfg = LossConfig(lambda_triplet=0.5, lambda_topk=2.0, lambda_sparsity=0.1, lambda_smooth=0.3)
    v, s, z, y = torch.randn(4), torch.randn(4, 6), torch.randn(4, 5), torch.tensor([0.0, 1.0, 0.0, 1.0])
    total, terms = MateLoss(cfg)(v, s, z, y)
    assert set(terms) == {"bce", "triplet", "topk", "sparsity", "smooth"}
    assert terms["triplet"] == pytest.approx(0.5 * batch_hard_triplet(z, y, cfg.triplet_margin).item(), rel=1e-6)
    assert terms["smooth"] == pytest.approx(0.3 * smoothness_loss(s).item(), rel=1e-6)
    assert total.item() == pytest.approx(sum(terms.values()), rel=1e-6)


def test_topk_count_is_floor_with_at_least_one():
    assert [topk_count(T) for T in (1, 7, 8, 12, 15, 16, 20, 28, 32)] == [1, 1, 1, 1, 1, 2, 2, 3, 4]
    assert all(topk_count(T) == max(1, T // 8) for T in range(1, 200))
    assert topk_count(12, 0.25) == 3 and topk_count(100, 0.57) == 57 and topk_count(5, 1.0) == 5
    # the loss uses the same k as the model: at T = 12 one snippet (round(1.5) gave 2 before)
    logits = torch.tensor([[5.0, 1.0] + [0.0] * 10])
    assert topk_mil_loss(logits, torch.tensor([1.0]), 0.125).item() == pytest.approx(math.log(1 + math.exp(-5.0)))


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_topk_ratio_outside_0_1_is_refused(ratio):
    with pytest.raises(MateError, match=r"topk_ratio \(--topk_ratio\) must be in \(0, 1\]"):
        LossConfig(topk_ratio=ratio)


def test_loss_fields_are_the_flags_and_bad_values_are_refused():
    """LossConfig's fields are the loss flags (scripts/option.py builds them from the fields), checked by their
    declaration: a NaN or negative weight or margin is one line naming the key, not a NaN loss later."""
    import dataclasses

    from scripts.option import get_loss_parser, parse_args
    from scripts.training.training import loss_config_from_args

    args = parse_args(get_loss_parser(), ["--lambda_topk", "1", "--no_triplet", "--triplet_margin", "0.3"])
    assert loss_config_from_args(args) == LossConfig(lambda_triplet=0.0, triplet_margin=0.3, lambda_topk=1.0)
    assert {a.dest for a in get_loss_parser()._actions} >= {f.name for f in dataclasses.fields(LossConfig)}
    for key, value, fault in (("triplet_margin", float("nan"), "a number >= 0"), ("lambda_smooth", -1.0, "a number >= 0")):
        with pytest.raises(MateError, match=f"loss config: {key} must be {fault}"):
            LossConfig(**{key: value})
