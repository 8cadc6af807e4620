"""scripts/models/part_seeds.py: a part's initial weights depend on its name and torch's seed only, so adding,
removing or reordering parts leaves every other part's initial weights, and torch's RNG after the model, as
they were."""
import pytest
import torch
from torch import nn

from scripts.model import build_model, config_for_variant
from scripts.models.part_seeds import PartSeeds


def built(seed: int, **overrides) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = build_model(config_for_variant(overrides.pop("variant", "fast"), **overrides))
    return model.state_dict()


@pytest.mark.parametrize("overrides", [dict(use_tcc=False), dict(use_attention=False), dict(use_motion_map=False),
                                       dict(use_motion_pooling=False), dict(video_logit="embedding"),
                                       dict(num_blocks=2), dict(tcc_mode="plain"), dict(variant="base", dim=8,
                                                                                         tcc_bottleneck=8)],
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_a_part_switched_leaves_the_others_initial_weights(overrides):
    full, other = built(0, variant="fast"), built(0, **overrides)

    def parts(state):  # part name (embed, blocks.0.tcc, ...) -> its tensors' names and shapes
        found = {}
        for k, v in state.items():
            name = ".".join(k.split(".")[:3 if k.startswith("blocks.") else 1])
            found.setdefault(name, {})[k] = tuple(v.shape)
        return found

    p_full, p_other = parts(full), parts(other)
    shared = [name for name in p_other if p_full.get(name) == p_other[name]]  # the same part, the same size
    # the parts both models have start alike, whatever was added, removed or resized around them
    assert len(shared) >= 4 and all(torch.equal(full[k], other[k]) for name in shared for k in p_other[name]), \
        [name for name in shared if not all(torch.equal(full[k], other[k]) for k in p_other[name])]
    if overrides.get("num_blocks") == 2:
        assert not torch.equal(other["blocks.0.ff.net.1.weight"], other["blocks.1.ff.net.1.weight"])


def test_torch_seed_still_chooses_the_weights_and_the_rng_advances_alike():
    assert not torch.equal(built(0)["embed.proj.weight"], built(1)["embed.proj.weight"])
    after = []
    for overrides in ({}, dict(use_tcc=False, use_attention=False), dict(num_blocks=3)):
        torch.manual_seed(0)
        build_model(config_for_variant("fast", **overrides))
        after.append(torch.rand(4))  # batch order and dropout draw from here on
    assert all(torch.equal(after[0], a) for a in after[1:])


def test_build_order_and_an_unseeded_part_do_not_matter():
    def parts(order, extra: bool):
        torch.manual_seed(3)
        seeds = PartSeeds()
        with seeds.isolated():
            if extra:
                nn.Linear(16, 16)  # built without a name: draws from the isolated RNG only
            weights = {name: seeds.build(name, lambda: nn.Linear(4, 4)).weight for name in order}
        return weights, torch.rand(2)

    (a, rng_a), (b, rng_b) = parts(["x", "y"], False), parts(["y", "x"], True)
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"]) and not torch.equal(a["x"], a["y"])
    assert torch.equal(rng_a, rng_b)
