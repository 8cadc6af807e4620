"""Feature loading in the three shapes, resampling, the cache and balanced batches."""
from pathlib import Path

import numpy as np
import pytest
import torch

from scripts.dataset import (BalancedBatchSampler, FeatureDataset, load_array, load_features,
                             resample_segments, to_model_layout)
from scripts.core.errors import MateError
from scripts.data.manifest import VideoEntry


def save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr)
    return path


def test_three_shapes_into_model_layout():
    rng = np.random.default_rng(0)
    fmap = rng.random((192, 16, 10, 10), dtype=np.float32)
    assert to_model_layout(fmap).shape == (192, 16, 10, 10)
    seq = rng.random((40, 2048), dtype=np.float32)
    out = to_model_layout(seq)
    assert out.shape == (2048, 40, 1, 1) and np.array_equal(out[:, 7, 0, 0], seq[7])
    crops = rng.random((40, 10, 64), dtype=np.float32)
    mean = to_model_layout(crops, crop_mode="mean")
    assert mean.shape == (64, 40, 1, 1)
    np.testing.assert_allclose(mean[:, 3, 0, 0], crops[3].mean(axis=0), rtol=1e-6)
    space = to_model_layout(crops, crop_mode="space")
    assert space.shape == (64, 40, 10, 1) and np.array_equal(space[:, 3, 2, 0], crops[3, 2])


def test_float16_files_load_as_float32(tmp_path):
    path = save(tmp_path / "a.npy", np.ones((5, 8), dtype=np.float16))
    x = load_features(path)
    assert x.dtype == np.float32 and x.shape == (8, 5, 1, 1)


@pytest.mark.parametrize("arr, fault", [
    (np.zeros((3,), np.float32), "rank 1"),
    (np.zeros((1, 2, 3, 4, 5), np.float32), "rank 5"),
    (np.array([[1.0, np.nan]], np.float32), "NaN or Inf"),
    (np.array([[1.0, np.inf]], np.float32), "NaN or Inf"),
    (np.zeros((0, 8), np.float32), "empty array"),
    (np.array([["a", "b"]]), "numeric array"),
])
def test_bad_arrays(tmp_path, arr, fault):
    path = save(tmp_path / "bad.npy", arr)
    with pytest.raises(MateError, match=fault) as err:
        load_array(path)
    assert str(err.value).startswith(str(path))


def test_unreadable_and_missing(tmp_path):
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"this is not numpy")
    with pytest.raises(MateError, match=r"junk.npy: not a .npy array \(no .npy header: it starts with b'this i'\)"):
        load_array(junk)  # named for what it is, never "pickled data ... allow_pickle" (issue #31, item 14)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(MateError, match="objects.npy: holds pickled Python objects, not a numeric array"):
        load_array(pickled)
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(MateError, match=r"empty.npy: empty file \(0 bytes\)"):
        load_array(tmp_path / "empty.npy")
    truncated = tmp_path / "cut.npy"
    np.save(truncated, np.ones((100, 64), np.float32))
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(MateError, match="cut.npy: not a readable"):
        load_array(truncated)
    with pytest.raises(MateError, match="feature file not found"):
        load_array(tmp_path / "absent.npy")


def test_resample_averages_uniform_chunks():
    x = torch.arange(8, dtype=torch.float32).view(1, 8, 1, 1)  # [C=1, T=8, 1, 1]
    assert resample_segments(x, 4).flatten().tolist() == [0.5, 2.5, 4.5, 6.5]
    assert resample_segments(x, 8).flatten().tolist() == list(range(8))
    assert resample_segments(x, 1).flatten().tolist() == [3.5]
    # 10 -> 4: bounds linspace(0,10,5) = 0,2,5,7,10
    x10 = torch.arange(10, dtype=torch.float32).view(1, 10, 1, 1)
    assert resample_segments(x10, 4).flatten().tolist() == [0.5, 3.0, 5.5, 8.0]


def test_resample_stretches_short_sequences():
    x = torch.tensor([1.0, 5.0, 9.0]).view(1, 3, 1, 1)
    out = resample_segments(x, 6)  # bounds 0,0,1,1,2,2,3 -> empty chunks repeat their start
    assert out.flatten().tolist() == [1.0, 1.0, 5.0, 5.0, 9.0, 9.0]
    y = torch.randn(4, 5, 2, 3)
    assert resample_segments(y, 32).shape == (4, 32, 2, 3)


def make_entries(tmp_path, shapes, labels):
    rng = np.random.default_rng(1)
    return [VideoEntry(save(tmp_path / f"v{i}.npy", rng.standard_normal(s).astype(np.float32)), y,
                       "Normal" if y == 0 else "Abuse") for i, (s, y) in enumerate(zip(shapes, labels))]


def test_cache_maps_stacked_and_float16(tmp_path):
    entries = make_entries(tmp_path, [(6, 4, 3, 3)] * 4, [0, 1, 0, 1])
    ds = FeatureDataset(entries, num_segments=32, cache_dtype="float16", progress=False)
    assert ds.feature_shape == (6, 4, 3, 3)  # maps keep their T
    x, y = ds.batch([3, 0])
    assert x.shape == (2, 6, 4, 3, 3) and x.dtype == torch.float32 and y.tolist() == [1.0, 0.0]
    ref = torch.from_numpy(np.load(entries[3].path))
    assert torch.allclose(x[0], ref, atol=1e-2) and not torch.equal(x[0], ref)  # float16 storage
    for e in entries:  # an epoch reads no file
        e.path.unlink()
    assert ds[2][0].shape == (6, 4, 3, 3)


def test_cache_sequences_resampled_for_training_full_for_test(tmp_path):
    entries = make_entries(tmp_path, [(40, 8), (13, 8), (7, 8)], [0, 1, 1])
    train = FeatureDataset(entries, num_segments=16, progress=False)
    assert train.is_sequence and train.batch([0, 1, 2])[0].shape == (3, 8, 16, 1, 1)
    test = FeatureDataset(entries, num_segments=None, progress=False)
    assert [test[i][0].shape[1] for i in range(3)] == [40, 13, 7]
    torch.testing.assert_close(test[1][0][:, :, 0, 0].T, torch.from_numpy(np.load(entries[1].path)))


def test_cache_rejects_mismatched_shapes(tmp_path):
    entries = make_entries(tmp_path, [(6, 4, 3, 3), (6, 4, 2, 3)], [0, 1])
    with pytest.raises(MateError, match=r"v1.npy: feature shape \[6, 4, 2, 3\] differs"):
        FeatureDataset(entries, progress=False)
    mixed = make_entries(tmp_path / "m", [(6, 4, 3, 3), (4, 6)], [0, 1])
    with pytest.raises(MateError, match="mixes sequence and map"):
        FeatureDataset(mixed, progress=False)


@pytest.mark.parametrize("order", ["anomalous_first", "normal_first", "shuffled"])
def test_balanced_batches_from_unbalanced_list(order):
    labels = [1] * 30 + [0] * 11  # unbalanced, abnormal first as in the published lists
    if order == "normal_first":
        labels = labels[::-1]
    elif order == "shuffled":
        labels = list(np.random.default_rng(5).permutation(labels))
    sampler = BalancedBatchSampler(labels, batch_size=8, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 8  # ceil(30 / 4)
    for batch in batches:
        assert len(batch) == 8 and sum(labels[i] for i in batch) == 4
    seen_anomalous = {i for b in batches for i in b if labels[i] == 1}
    assert len(seen_anomalous) == 30  # the larger class is covered once per epoch
    seen_normal = [i for b in batches for i in b if labels[i] == 0]
    assert set(seen_normal) == {i for i, y in enumerate(labels) if y == 0}


def test_sampler_deterministic_per_seed_and_epoch():
    labels = [0] * 10 + [1] * 12
    a, b = BalancedBatchSampler(labels, batch_size=4, seed=1), BalancedBatchSampler(labels, batch_size=4, seed=1)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    assert list(BalancedBatchSampler(labels, batch_size=4, seed=2)) != list(b)


@pytest.mark.parametrize("labels, bs, fault", [
    ([0, 0, 0], 4, "both normal"),
    ([0, 1], 3, "even number"),
    ([0, 1], 0, "even number"),
])
def test_sampler_errors(labels, bs, fault):
    with pytest.raises(MateError, match=fault):
        BalancedBatchSampler(labels, batch_size=bs)
