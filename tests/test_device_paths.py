"""CUDA paths checked without a GPU. Every model variant's forward, loss and backward with the model and inputs on the meta device: a
tensor made on the CPU inside them (a stray torch.tensor, arange, zeros without device=) meets a meta
tensor and fails, which on a GPU would be a device mismatch or a silent host copy per step. No GPU needed."""
import pytest
import torch

from scripts.model import build_model, config_for_variant
from scripts.models.config import VARIANTS
from scripts.models.losses import LossConfig, MateLoss

SHAPES = {"map": (192, 16, 4, 4), "sequence": (64, 32, 1, 1)}


@pytest.mark.parametrize("layout", sorted(SHAPES))
@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_loss_and_backward_on_the_meta_device(variant, layout):
    C, T, H, W = SHAPES[layout]
    if variant.startswith("paper") and layout == "sequence":
        pytest.skip("the published architecture reads maps only")
    torch.manual_seed(0)
    model = build_model(config_for_variant(variant, in_channels=C)).to("meta").train()
    x = torch.randn(4, C, T, H, W, device="meta")
    y = torch.tensor([0.0, 1.0, 0.0, 1.0], device="meta")
    out = model(x)
    assert out.video_logit.device.type == "meta" and out.video_logit.shape == (4,)
    loss_fn = MateLoss(LossConfig(lambda_topk=0.5, lambda_sparsity=0.1, lambda_smooth=0.1))
    terms = loss_fn.terms(out.video_logit, out.snippet_logits, out.embedding, y)
    assert set(terms) == {"bce", "triplet", "topk", "sparsity", "smooth"}
    loss = torch.stack(list(terms.values())).sum()
    loss.backward()
    # the published attention creates to_out and never applies it (scripts/models/paper_model.py)
    unused = ".attn.to_out." if variant.startswith("paper") else None
    missing = [name for name, p in model.named_parameters()
               if p.requires_grad and p.grad is None and not (unused and unused in name)]
    assert not missing, f"no gradient reaches {missing}"
    assert all(p.grad.device.type == "meta" for p in model.parameters() if p.grad is not None)


def test_a_runs_rng_state_round_trips_and_holds_cuda_only_where_used():
    from scripts.training.resume import rng_state, set_rng_state

    torch.manual_seed(3)
    state = rng_state()
    first = torch.rand(4)
    set_rng_state(state)
    assert torch.equal(torch.rand(4), first)
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        assert state["cuda"] is None  # a CPU run stores no CUDA generator
    set_rng_state({"torch": state["torch"]})  # a checkpoint from before CUDA states were saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_the_cuda_generator_is_saved_and_restored_per_run():
    from scripts.training.resume import rng_state, set_rng_state

    torch.cuda.init()
    state = rng_state()
    assert state["cuda"] is not None and len(state["cuda"]) == torch.cuda.device_count()
    first = torch.rand(4, device="cuda")
    torch.rand(100, device="cuda")  # another run's draws in between
    set_rng_state(state)
    assert torch.equal(torch.rand(4, device="cuda"), first)
