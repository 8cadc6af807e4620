"""The clip batch per device, clip workers that leave the features as they were, and a detector that
scores in float32 while the backbone runs under autocast (scripts/extraction/batching.py, extraction.py)."""
import numpy as np
import pytest
import torch

from scripts.core.errors import MateError
from scripts.evaluation.single_video import VideoScorer
from scripts.extraction import extraction
from scripts.extraction.batching import choose_batching
from scripts.extraction.extraction import ExtractSettings, extract_video
from scripts.extraction.x3d import load_backbone
from test_single_video import CLIP, make_checkpoint

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_the_clip_batch_is_chosen_per_device_and_a_flag_wins():
    two = choose_batching(CPU, threads=2)
    assert (two.batch_size, two.workers, two.threads_per_worker) == (1, 2, 1)
    assert "CPU: fastest per clip" in two.said and "2 worker(s)" in two.said
    one = choose_batching(CPU, threads=1)
    assert (one.batch_size, one.workers, one.threads_per_worker) == (1, 1, 1)
    many = choose_batching(CPU, threads=16)
    assert (many.workers, many.threads_per_worker) == (2, 8)
    stream = choose_batching(CPU, threads=2, live=True)
    assert (stream.batch_size, stream.workers, stream.threads_per_worker) == (1, 1, 2)
    assert "a stream: lowest latency" in stream.said
    gpu = choose_batching(CUDA, threads=16)  # a device object needs no GPU
    assert (gpu.batch_size, gpu.workers) == (8, 1) and "CUDA" in gpu.said
    asked = choose_batching(CPU, batch_size=4, workers=1, threads=2, batch_flag="--clip_batch_size")
    assert (asked.batch_size, asked.workers, asked.threads_per_worker) == (4, 1, 2)
    assert "--clip_batch_size" in asked.said and "--clip_workers" in asked.said
    with pytest.raises(MateError, match="--clip_batch_size: must be at least 1, got 0"):
        choose_batching(CPU, batch_size=0, batch_flag="--clip_batch_size")
    with pytest.raises(MateError, match="--clip_workers: must be at least 1"):
        choose_batching(CPU, workers=-1)


@pytest.mark.parametrize("layout", ["map", "sequence"])
def test_workers_and_batches_give_the_same_features(layout):
    """Two clips in two workers, one clip per pass, or eight per pass: the same features, in order."""
    torch.set_num_threads(1)
    net = load_backbone("x3d_xs", random_weights=True, layout=layout).eval()
    results = []
    for batch, workers in ((8, 1), (1, 1), (1, 2), (3, 2)):
        settings = ExtractSettings.for_backbone("x3d_xs", batch_size=batch, clip_workers=workers,
                                                clip_sampling="strided" if layout == "sequence" else "uniform")
        seen = []
        features, sidecar = extract_video(CLIP, net, settings, on_clips=lambda y: seen.append(y.clone()))
        results.append((features, torch.cat(seen)))
        assert sidecar["precision"] == "float32" and sidecar["device"] == "cpu"
    for features, clips in results[1:]:
        assert features.shape == results[0][0].shape
        assert np.abs(features - results[0][0]).max() <= 1e-6
        assert (clips - results[0][1]).abs().max() <= 1e-6  # on_clips sees the clips in the video's order


def test_a_map_detector_scores_in_float32_while_the_backbone_runs_under_autocast(tmp_path, monkeypatch):
    """CUDA extraction runs under float16 autocast; a detector scored inside it overflows the input
    norm's sum of squares on UCF-sized maps (about 5e5 > 65504). The CPU's float16 autocast stands in:
    every call of the detector must see autocast off, and the scores equal the float32 ones."""
    ckpt = make_checkpoint(tmp_path / "ckpt.pth", [192, 4, 5, 5], False)
    scorer = VideoScorer(ckpt, backbone="x3d_xs", random_weights=True, window_clips=2)
    plain = scorer.score(CLIP, progress=False)
    calls = []
    scorer.model.register_forward_pre_hook(lambda module, args: calls.append(torch.is_autocast_enabled("cpu")))
    monkeypatch.setattr(extraction, "_autocast",
                        lambda device: torch.autocast("cpu", dtype=torch.bfloat16))
    mixed = scorer.score(CLIP, progress=False)
    assert calls and not any(calls)
    assert np.abs(mixed.scores - plain.scores).max() < 0.05  # the backbone in bfloat16, the detector not


def test_the_input_norm_overflows_float16_on_ucf_sized_maps_unless_scored_in_float32():
    """Why the detector must not run under autocast: the map-level sum of squares of a [192, 16, 10, 10]
    map of unit values is 3e5, past float16's 65504."""
    from scripts.model import build_model, config_for_variant

    torch.manual_seed(0)
    model = build_model(config_for_variant("fast", in_channels=192)).eval()
    maps = torch.rand(4, 192, 16, 10, 10) * 2
    with torch.inference_mode():
        exact = torch.sigmoid(model(maps).video_logit)
        with torch.autocast("cpu", dtype=torch.float16):
            half = torch.sigmoid(model(maps).video_logit.float())
    assert exact.max() - exact.min() > 5e-4  # four maps, four scores
    assert half.max() - half.min() < (exact.max() - exact.min()) / 20  # the variance became inf: every map scores the same


@pytest.mark.parametrize("layout", ["map", "sequence"])
def test_folded_batch_norms_give_the_same_features(layout):
    """load_backbone folds each BatchNorm3d into the Conv3d before it: the same features (1e-6 relative)
    with non-trivial running statistics, as trained weights have; nothing left to fold."""
    from scripts.extraction.x3d import X3DFeatures, create_x3d_network

    torch.manual_seed(0)
    net = create_x3d_network("x3d_xs")
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.05, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
    model = X3DFeatures(net, layout=layout).eval()
    x = torch.randn(2, 3, 4, 96, 96)
    with torch.inference_mode():
        plain = model(x)
    folded = model.fold_batch_norms()
    assert folded > 0 and not any(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules())
    with torch.inference_mode():
        fast = model(x)
    assert (fast - plain).abs().max() <= 1e-6 * plain.abs().max()
    assert model.fold_batch_norms() == 0  # folding twice changes nothing
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in load_backbone("x3d_xs", random_weights=True).modules())
