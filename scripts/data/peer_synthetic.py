"""A hard synthetic regime for sequence features at the field's widths, written in the peers' own file formats
(docs/data.md, "The sequence regime"), so that a study goes through import_peers.py as the peers' real
features do.

    python makelist.py --peer_synthetic data/peer_synth/ucf_rtfm --peer_format ucf_rtfm --n_train 160 --n_test 80
    python import_peers.py --family rtfm --dataset ucf --train_list data/peer_synth/ucf_rtfm/train.list \
        --test_list data/peer_synth/ucf_rtfm/test.list --gt data/peer_synth/ucf_rtfm/gt.npy \
        --features_root data/peer_synth/ucf_rtfm --out_dir data/peers/synth_ucf_rtfm

FORMATS: ucf_rtfm (RTFM, MGFN, S3R: one [T, 10, 2048] file per video `<name>_i3d.npy`, CRLF lists of Windows
paths), ucf_wu (UR-DMU, PEL4VAD: one [T, 1024] file per crop `<name>__<k>.npy`, ten crops on consecutive
lines), xd_wu (XD-Violence: five crops, `_label_A` normal). Anomalous videos first, as every peer list has
them; `gt.npy` is the test videos' frame labels concatenated in list order, 16 frames per snippet.

Generative model, per video (its own generator, seeded by (seed, split, index), so a set is the same
file for file every time); `SequenceRegime` holds the numbers:
- T ~ U[t_min, t_max] snippets; features post-ReLU: max(0, level_v + drift_v(t) + noise), where level_v is
  the data set's channel offsets plus a per-video offset (a scene's own level, larger than any event) and
  drift_v slow random walks along a few scene patterns;
- crops see the snippet with a gain of 1 +- 0.1 each and their own noise;
- an anomalous video has 1 or 2 events of 2..max(2, T // 8) snippets, in a random part (>= 1) of its
  crops, along its class's sparse channel pattern (a part shared by all classes plus its own), with a
  class-dependent time profile (sustained, pulsing, rising, fading) and an amplitude from a range whose
  low end is below the noise of a snippet's mean;
- half of all videos, normal ones included, carry a distractor: a burst of the same size on a pattern of
  no anomaly class with an abrupt onset (so onsets and differences alone do not tell), or a scene cut
  (the level jumps).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scripts.core.errors import MateError
from scripts.core.fileio import save_npy, write_text
from scripts.data.manifest import NORMAL_CLASS, UCF_CLASSES
from scripts.data.ucf_crime import video_name

FRAMES_PER_SNIPPET = 16
# format -> (dataset, family, channels D, crops K)
FORMATS = {"ucf_rtfm": ("ucf", "rtfm", 2048, 10), "ucf_wu": ("ucf", "wu", 1024, 10), "xd_wu": ("xd", "wu", 1024, 5)}
XD_CODES = ("B1-0-0", "B2-0-0", "B4-0-0", "B5-0-0", "B6-0-0", "G-0-0")  # fighting, shooting, riot, abuse, accident, explosion
PROFILES = ("sustained", "pulsing", "rising", "fading")  # an event's time course, by its class's index modulo 4


@dataclass(frozen=True)
class SequenceRegime:
    t_range: tuple[int, int] = (24, 96)  # snippets per video, inclusive
    noise: float = 0.35  # per snippet and channel
    crop_noise: float = 0.15  # a crop's own noise on top
    video_offset: float = 0.2  # std of a video's own channel levels
    drift: float = 0.4  # size of the slow scene drift over a video
    amp: tuple[float, float] = (0.7, 1.8)  # event amplitude (times its sparse pattern of entries 0.5-1)
    event_div: int = 8  # the longest event is T // event_div snippets (at least 2)
    crop_p: float = 0.5  # each crop shows the event with this probability (at least one does)
    distractor_p: float = 0.5  # share of videos with a burst or a scene cut
    cut: float = 0.8  # std of a scene cut's level jump


REGIME = SequenceRegime()


def _units(rng: np.random.Generator, D: int, share: int = 8) -> np.ndarray:
    d = np.zeros(D, np.float32)
    k = max(1, D // share)
    d[rng.choice(D, k, replace=False)] = rng.uniform(0.5, 1.0, k)
    return d


def _world(seed: int, D: int) -> tuple[np.ndarray, dict[str, np.ndarray], list[np.ndarray]]:
    """Channel offsets, each class's pattern (shared part + its own), the distractors' patterns."""
    rng = np.random.default_rng([seed, 7, D])
    offset = rng.gamma(2.0, 0.5, D).astype(np.float32)
    shared = _units(rng, D)
    classes = {c: 0.5 * shared + 0.8 * _units(rng, D) for c in UCF_CLASSES}
    return offset, classes, [_units(rng, D) for _ in range(4)]


def _profile(kind: str, L: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, L, dtype=np.float32)
    if kind == "pulsing":
        return np.where(np.arange(L) % 2 == 0, 1.0, 0.35).astype(np.float32)
    return {"sustained": np.ones_like(t), "rising": 0.35 + 0.65 * t, "fading": 1.0 - 0.65 * t}[kind]


def _interval(rng: np.random.Generator, T: int, div: int) -> tuple[int, int]:
    L = int(rng.integers(2, max(2, T // div) + 1))
    a = int(rng.integers(0, T - L + 1))
    return a, a + L - 1


def make_video(rng: np.random.Generator, T: int, K: int, world, cls: str | None,
               regime: SequenceRegime = REGIME) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """[T, K, D] float32 features of one video and its events' inclusive snippet intervals (none if normal)."""
    offset, classes, distractors = world
    D = offset.size
    level = offset + rng.normal(0.0, regime.video_offset, D).astype(np.float32)
    walk = np.cumsum(rng.normal(0.0, 1.0, (T, 3)), axis=0) / np.sqrt(T)  # [T, 3] slow time courses
    scene = np.stack([_units(rng, D, 16) for _ in range(3)])  # [3, D]
    x = level + regime.drift * (walk @ scene) + rng.normal(0.0, regime.noise, (T, D))  # [T, D]
    x = np.repeat(x[:, None, :], K, axis=1)  # [T, K, D]
    x *= rng.uniform(0.9, 1.1, (1, K, 1))
    x += rng.normal(0.0, regime.crop_noise, (T, K, D))
    events = []
    if cls is not None:
        pattern, kind = classes[cls], PROFILES[UCF_CLASSES.index(cls) % len(PROFILES)]
        for _ in range(int(rng.integers(1, 3))):
            a, b = _interval(rng, T, regime.event_div)
            crops = rng.random(K) < regime.crop_p
            crops[rng.integers(K)] = True
            amp = rng.uniform(*regime.amp)
            x[a:b + 1, crops] += (amp * _profile(kind, b - a + 1))[:, None, None] * pattern
            events.append((a, b))
    if rng.random() < regime.distractor_p:
        if rng.random() < 0.5:  # a passer-by: an event-like burst of no anomaly class
            a, b = _interval(rng, T, regime.event_div)
            x[a:b + 1] += rng.uniform(*regime.amp) * distractors[int(rng.integers(len(distractors)))]
        else:  # a scene cut: the level jumps
            t = int(rng.integers(1, T))
            x[t:] += rng.normal(0.0, regime.cut, D).astype(np.float32)
    return np.maximum(x, 0.0).astype(np.float32), sorted(events)


def _names(fmt: str, n: int, split: str, rng: np.random.Generator) -> list[tuple[str, str | None]]:
    """(name, anomaly class or None) of n videos, half anomalous, anomalous first (the peers' lists)."""
    n_anomalous = n // 2
    classes = [UCF_CLASSES[i % len(UCF_CLASSES)] for i in rng.permutation(n_anomalous)]
    videos = []
    for i, cls in enumerate(classes):
        if fmt.startswith("xd"):
            code = XD_CODES[UCF_CLASSES.index(cls) % len(XD_CODES)]
            videos.append((f"Synth.{split}.{i:04d}__#00-00-00_00-01-00_label_{code}", cls))
        else:
            videos.append((video_name(cls, 100 * (split == "test") + i + 1, split), cls))
    for i in range(n - n_anomalous):
        name = (f"Synth.{split}.n{i:04d}__#00-00-00_00-01-00_label_A" if fmt.startswith("xd")
                else video_name(NORMAL_CLASS, 100 * (split == "test") + i + 1, split))
        videos.append((name, None))
    return videos


def write_rtfm(root: Path, split: str, names: list[str], arrays: dict, list_path: Path) -> Path:
    """RTFM's layout: <root>/UCF_<Split>_ten_crop_i3d/<name>_i3d.npy [T, K, D]; the list CRLF with Windows paths."""
    folder = root / f"UCF_{split.title()}_ten_crop_i3d"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        save_npy(folder / f"{name}_i3d.npy", arrays[name])
    return write_text(list_path, "".join(f"G:\\{folder.name}\\{name}_i3d.npy\r\n" for name in names))


def write_wu(root: Path, split: str, names: list[str], arrays: dict, list_path: Path, *, pel4vad: bool = False) -> Path:
    """Wu's layout: one [T, D] file per crop, `<name>__<k>.npy` (PEL4VAD: crop 0 as `<name>.npy`), the crops of a
    video on consecutive lines; UR-DMU's relative `dataset/<split>/...` paths."""
    folder = root / "dataset" / split
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name in names:
        for k in range(arrays[name].shape[1]):
            file = f"{name}.npy" if pel4vad and k == 0 else f"{name}__{k}.npy"
            save_npy(folder / file, np.ascontiguousarray(arrays[name][:, k]))
            lines.append(f"dataset/{split}/{file}")
    return write_text(list_path, "\n".join(lines) + "\n")


def write_split(out: Path, fmt: str, split: str, videos, arrays) -> Path:
    """The split's feature files and list `<split>.list`, as the format's repositories ship them."""
    names = [name for name, _ in videos]
    write = write_rtfm if FORMATS[fmt][1] == "rtfm" else write_wu
    return write(out, split, names, dict(zip(names, arrays)), out / f"{split}.list")


def make_peer_set(out_dir: str | os.PathLike, *, fmt: str, n_train: int = 160, n_test: int = 80, seed: int = 0,
                  regime: SequenceRegime = REGIME, progress: bool = True) -> dict:
    """Write train.list, test.list, gt.npy and the feature files of one format; returns what was written."""
    if fmt not in FORMATS:
        raise MateError(f"--peer_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if n_train < 4 or n_test < 2:
        raise MateError(f"a peer set needs at least 4 training and 2 test videos, got {n_train} and {n_test}")
    out = Path(out_dir)
    _, _, D, K = FORMATS[fmt]
    world = _world(seed, D)
    summary = {"format": fmt, "channels": D, "crops": K}
    for code, (split, n) in enumerate((("train", n_train), ("test", n_test)), start=1):
        videos = _names(fmt, n, split, np.random.default_rng([seed, code, 99]))
        arrays, gt = [], []
        for i, (name, cls) in enumerate(tqdm(videos, desc=f"{fmt} {split}", unit="video", disable=not progress)):
            rng = np.random.default_rng([seed, code, i])
            T = int(rng.integers(regime.t_range[0], regime.t_range[1] + 1))
            x, events = make_video(rng, T, K, world, cls, regime)
            arrays.append(x)
            frames = np.zeros(FRAMES_PER_SNIPPET * T, np.float32)
            for a, b in events:
                frames[FRAMES_PER_SNIPPET * a:FRAMES_PER_SNIPPET * (b + 1)] = 1.0
            gt.append(frames)
        write_split(out, fmt, split, videos, arrays)
        if split == "test":
            save_npy(out / "gt.npy", np.concatenate(gt))
        summary[split] = len(videos)
    return summary
