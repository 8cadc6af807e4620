"""Feature files, the in-memory feature cache and balanced batches (docs/design.md §2, §4, §5).

Three on-disk shapes are accepted and brought into the model layout `[C, T, H, W]`:
`[C, T, H, W]` X3D maps as they are, `[T, D]` sequences as `[D, T, 1, 1]`, and `[T, K, D]` multi-crop
sequences as `[D, T, 1, 1]` (crops averaged) or `[D, T, K, 1]` (crops as spatial positions); a per-crop line
`<video>__<k>.npy` of a `[T, K, D]` file is its crop k, `[T, D]`.
Manifest parsing lives in scripts/data/manifest.py and is re-exported here.
"""
from __future__ import annotations

import contextlib
import math
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from scripts.core.errors import MateError
from scripts.core.fileio import npy_header_fault
from scripts.data.manifest import VideoEntry, crop_index
from scripts.core.memory import release_freed_memory
from scripts.models.motion import motion_map

CROP_MODES = ("mean", "space", "score_mean")  # score_mean: scripts/models/crop_scoring.py
CACHE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def load_array(path: str | Path) -> np.ndarray:
    """Load a feature `.npy`, turning every way it can be broken into a MateError naming the file. A per-crop
    line (`<video>__<k>.npy`, scripts/data/crops.py) whose file is `[T, K, D]` gives crop k, `[T, D]`, read
    alone from the mapped file."""
    path = Path(path)
    crop = crop_index(path.stem)
    try:
        fault = npy_header_fault(path)
        if fault is not None:
            raise MateError(f"{path}: {fault}")
        arr = np.load(path, allow_pickle=False, mmap_mode=None if crop is None else "r")
        if crop is not None and isinstance(arr, np.ndarray):
            arr = select_crop(np.asarray(arr), crop, path)
    except FileNotFoundError:
        raise MateError(f"{path}: feature file not found") from None
    except ValueError as exc:
        if "pickle" in str(exc) or "Object arrays" in str(exc):
            raise MateError(f"{path}: holds pickled Python objects, not a numeric array (refused: loading "
                            "them could run code from the file)") from None
        raise MateError(f"{path}: not a readable .npy array ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise MateError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise MateError(f"{path}: expected a numeric array, got dtype {getattr(arr, 'dtype', type(arr))}")
    if arr.ndim not in (2, 3, 4):
        raise MateError(f"{path}: array of rank {arr.ndim} {list(arr.shape)}; expected [C,T,H,W], [T,D] "
                        "or [T,K,D]")
    if arr.size == 0:
        raise MateError(f"{path}: empty array of shape {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise MateError(f"{path}: contains NaN or Inf values")
    return arr


def select_crop(arr: np.ndarray, crop: int, path: Path) -> np.ndarray:
    """Crop k of a `[T, K, D]` array, copied out of the mapped file; any other array as it is, in memory."""
    if arr.ndim != 3:
        return np.array(arr)
    if crop >= arr.shape[1]:
        raise MateError(f"{path}: a line for crop {crop} of a file with {arr.shape[1]} crops {list(arr.shape)}")
    return np.array(arr[:, crop, :])


def is_sequence(arr: np.ndarray) -> bool:
    """Rank-2 `[T, D]` and rank-3 `[T, K, D]` files are snippet sequences; rank 4 are maps."""
    return arr.ndim in (2, 3)


def to_model_layout(arr: np.ndarray, *, crop_mode: str = "mean") -> np.ndarray:
    """Bring any accepted feature shape into the model layout `[C, T, H, W]` as float32."""
    assert crop_mode in CROP_MODES, f"crop_mode must be one of {CROP_MODES}, got {crop_mode!r}"
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 4:
        return arr  # [C, T, H, W]
    if arr.ndim == 2:
        return np.ascontiguousarray(arr.T[:, :, None, None])  # [D, T, 1, 1]
    assert arr.ndim == 3, f"expected rank 2, 3 or 4, got shape {arr.shape}"
    if crop_mode == "mean":
        return np.ascontiguousarray(arr.mean(axis=1).T[:, :, None, None])  # [D, T, 1, 1]
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[..., None])  # [D, T, K, 1]


def load_features(path: str | Path, *, crop_mode: str = "mean") -> np.ndarray:
    """Load one feature file in the model layout `[C, T, H, W]` (float32)."""
    return to_model_layout(load_array(path), crop_mode=crop_mode)


def resample_segments(x: torch.Tensor | np.ndarray, num_segments: int) -> torch.Tensor:
    """Resample `[C, T, H, W]` along T to `num_segments` steps by averaging uniform chunks.

    Chunk boundaries are `linspace(0, T, S + 1)` rounded down; when T < S some chunks are empty and
    take the single step at their start, so short videos are stretched by repetition.
    """
    x = torch.as_tensor(x)
    C, T, H, W = x.shape
    S = num_segments
    bounds = torch.linspace(0, T, S + 1).long()  # [S+1]
    starts, ends = bounds[:-1], bounds[1:]
    counts = (ends - starts).clamp(min=1).to(torch.float32)  # [S]
    cumsum = torch.cat([x.new_zeros(C, 1, H, W, dtype=torch.float32),
                        x.to(torch.float32).cumsum(dim=1)], dim=1)  # [C, T+1, H, W]
    sums = cumsum[:, ends] - cumsum[:, starts]  # [C, S, H, W]
    means = sums / counts.view(1, S, 1, 1)
    empty = ends == starts
    if empty.any():
        means[:, empty] = x[:, starts[empty].clamp(max=T - 1)].to(torch.float32)
    return means  # [C, S, H, W]


def stack_freeing(items: list[torch.Tensor]) -> torch.Tensor:
    """torch.stack(items), emptying the list as it goes: the peak memory is about one copy of the
    features, not two (1,610 UCF-Crime maps are 2 GB in float32)."""
    out = torch.empty(len(items), *items[0].shape, dtype=items[0].dtype)
    for i in range(len(items)):
        out[i] = items[i]
        items[i] = None  # type: ignore[call-overload]
        if i % 256 == 255:
            release_freed_memory()  # the freed buffers go back now, not when the process ends
    release_freed_memory()
    return out


def stacked_motion_maps(stack: torch.Tensor, window: int, eps: float) -> torch.Tensor:
    """The MotionMap of every video of a stacked cache `[N, C, T, H, W]` (any float dtype) -> `[N, T, H, W]`,
    64 videos at a time, each from `stack[i].float()` as `FeatureDataset.batch` hands it to the model."""
    return torch.cat([motion_map(stack[i:i + 64].float(), window, eps) for i in range(0, len(stack), 64)])


class FeatureDataset(Dataset):
    """Every video of a manifest, loaded once into memory, so an epoch reads no file.

    Items are `(x [C, T, H, W] float32, label float32)`. Sequence videos are resampled to
    `num_segments` steps when it is given (training); with `num_segments=None` they keep their full
    length (test). Maps keep their T. When all videos share one shape they are held in one stacked
    tensor and `batch(indices)` slices it without per-item work.

    Args:
        entries (Sequence[VideoEntry]): the videos, from `read_manifest`.
        num_segments (int | None): resampled length of sequences, or None to keep it.
        crop_mode (str): "mean" or "space", for `[T, K, D]` files.
        cache_dtype (str): "float32" or "float16" storage in memory.
        progress (bool): show a tqdm bar while loading.
        workers (int): threads reading files in parallel (numpy releases the GIL while reading); 0 =
            the calling thread only. The order of the videos never depends on it.
    """

    def __init__(self, entries: Sequence[VideoEntry], *, num_segments: int | None = None,
                 crop_mode: str = "mean", cache_dtype: str = "float32", progress: bool = True,
                 workers: int = 0):
        if cache_dtype not in CACHE_DTYPES:
            raise MateError(f"--cache_dtype: '{cache_dtype}' is not one of {', '.join(CACHE_DTYPES)}")
        if num_segments is not None and num_segments < 1:
            raise MateError(f"--num_segments: must be at least 1, got {num_segments}")
        self.entries = list(entries)
        if not self.entries:
            raise MateError("no videos to load")
        self.num_segments = num_segments
        self.crop_mode = crop_mode
        if workers < 0:
            raise MateError(f"--num_workers: must be 0 or more, got {workers}")
        dtype = CACHE_DTYPES[cache_dtype]

        def load(entry: VideoEntry) -> tuple[torch.Tensor, bool]:
            arr = load_array(entry.path)
            if crop_mode != "mean" and arr.ndim != 3:  # space, score_mean: the crops of a [T, K, D] file
                raise MateError(f"{entry.path}: --crop_mode {crop_mode} acts on multi-crop [T, K, D] files; this "
                                f"one is {list(arr.shape)} (use --crop_mode mean)")
            x = torch.from_numpy(to_model_layout(arr, crop_mode=crop_mode))
            if x.dtype != dtype:
                x = x.to(dtype)
                if not bool(torch.isfinite(x).all()):
                    raise MateError(f"{entry.path}: values up to {float(np.abs(arr).max()):.3g} overflow "
                                    f"--cache_dtype {cache_dtype} (largest {torch.finfo(dtype).max:.0f}); use "
                                    "--cache_dtype float32")
            return x, is_sequence(arr)

        with ThreadPoolExecutor(max_workers=workers) if workers > 0 else contextlib.nullcontext() as pool:
            loaded = pool.map(load, self.entries) if pool is not None else map(load, self.entries)
            pairs = list(tqdm(loaded, total=len(self.entries), desc="loading features", unit="video",
                              disable=not progress, leave=False))
        items = [x for x, _ in pairs]
        self.sequence = [seq for _, seq in pairs]
        self._check_shapes(items)
        self.labels = torch.tensor([e.label for e in self.entries], dtype=torch.float32)  # [N]
        shapes = {tuple(self._item_shape(x, seq)) for x, seq in zip(items, self.sequence)}
        if len(shapes) == 1 and not (num_segments is not None and any(self.sequence)):
            self._stack: torch.Tensor | None = stack_freeing(items)  # [N, C, T, H, W]
            self._items: list[torch.Tensor] = []
        else:
            self._stack, self._items = None, items
        self._motion: dict[tuple[int, float], torch.Tensor] = {}

    def _item_shape(self, x: torch.Tensor, seq: bool) -> list[int]:
        shape = list(x.shape)
        if seq and self.num_segments is not None:
            shape[1] = self.num_segments
        return shape

    def _check_shapes(self, items: list[torch.Tensor]) -> None:
        """Every video must have the first video's channels and space (and T, for maps)."""
        ref_entry, ref = self.entries[0], items[0]
        for entry, x, seq in zip(self.entries, items, self.sequence):
            if seq != self.sequence[0]:
                raise MateError(f"{entry.path}: mixes sequence and map features with {ref_entry.path}")
            C, T, H, W = x.shape
            if (C, H, W) != (ref.shape[0], ref.shape[2], ref.shape[3]) or (not seq and T != ref.shape[1]):
                raise MateError(f"{entry.path}: feature shape {list(x.shape)} differs from "
                                f"{list(ref.shape)} of {ref_entry.path}")

    @property
    def feature_shape(self) -> tuple[int, int, int, int]:
        """`(C, T, H, W)` of one item as the model sees it (T of the first video for sequences)."""
        x, _ = self[0]
        return tuple(x.shape)  # type: ignore[return-value]

    @property
    def is_stacked(self) -> bool:
        """True when all items share a shape and batches are slices of one tensor."""
        return self._stack is not None

    @property
    def is_sequence(self) -> bool:
        return self.sequence[0]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._stack is not None:
            return self._stack[index].float(), self.labels[index]
        x = self._items[index]
        if self.sequence[index] and self.num_segments is not None:
            return resample_segments(x, self.num_segments), self.labels[index]
        return x.float(), self.labels[index]

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch `(x [B, C, T, H, W], y [B])`; items must share a shape (maps or resampled)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        if self._stack is not None:
            return self._stack[idx].float(), self.labels[idx]
        return torch.stack([self[i][0] for i in idx.tolist()]), self.labels[idx]

    def motion_maps(self, indices: Sequence[int], window: int, eps: float) -> torch.Tensor | None:
        """The MotionMaps `[B, T, H, W]` (scripts/models/motion.py) of the videos of `batch(indices)`, or None
        when the videos are not stacked (then the model computes them itself).

        The map is a function of the features alone, so it is computed once per (window, eps), the
        first time it is asked for, from the very tensors `batch` returns: the same numbers as the
        model's own MotionMap, without recomputing them every epoch.
        """
        if self._stack is None:
            return None
        maps = self._motion.get((window, eps))
        if maps is None:
            maps = self._motion[(window, eps)] = stacked_motion_maps(self._stack, window, eps)
        return maps[torch.as_tensor(list(indices), dtype=torch.long)]


class BalancedBatchSampler(Sampler[list[int]]):
    """Batches with equal numbers of normal and anomalous videos, counted from the labels.

    An epoch covers every video of the larger class once; the smaller class is drawn from fresh
    permutations as often as needed. The order depends only on (seed, epoch): call `set_epoch`.

    Args:
        labels (Sequence[int]): 0/1 label of each video, in dataset order.
        batch_size (int): videos per batch, even: half normal, half anomalous.
        seed (int): base seed of the shuffling.
    """

    def __init__(self, labels: Sequence[int] | torch.Tensor, *, batch_size: int, seed: int = 0):
        labels = np.asarray(torch.as_tensor(labels).tolist(), dtype=np.int64)
        if batch_size < 2 or batch_size % 2:
            raise MateError(f"--batch_size: must be an even number >= 2 (half normal, half anomalous), "
                            f"got {batch_size}")
        self.normal = np.flatnonzero(labels == 0)
        self.anomalous = np.flatnonzero(labels == 1)
        if len(self.normal) == 0 or len(self.anomalous) == 0:
            raise MateError("balanced batches need both normal (0) and anomalous (1) videos")
        self.half = batch_size // 2
        most = 2 * max(len(self.normal), len(self.anomalous))  # each video at most twice in a batch
        if self.half > most:  # (--batch_size 100000 on 40 videos filled the memory with copies)
            raise MateError(f"--batch_size {batch_size}: a batch would hold every one of the {len(self.normal)} "
                            f"normal and {len(self.anomalous)} anomalous training videos more than twice; use at "
                            f"most {2 * most}")
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(max(len(self.normal), len(self.anomalous)) / self.half)

    def _draw(self, pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        reps = math.ceil(n / len(pool))
        return np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self) * self.half
        normal = self._draw(self.normal, n, rng)
        anomalous = self._draw(self.anomalous, n, rng)
        for b in range(len(self)):
            part = slice(b * self.half, (b + 1) * self.half)
            yield normal[part].tolist() + anomalous[part].tolist()
