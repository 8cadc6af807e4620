"""The embedded synthetic data set: UCF-Crime-shaped features a newcomer can train on with no download.

    from scripts.data.synthetic import make_synthetic
    train, test = make_synthetic("data/synthetic", n_train=200, n_test=60, layout="map")

Generative model (each video has its own generator, seeded by (seed, split, class, index in class)):
- Background: a per-video scene, a few random channel patterns times smooth spatial waves (plain
  channel vectors for sequences), slow temporal drift, per-channel offsets and Gaussian noise, clipped
  at 0 like post-ReLU features.
- Anomaly: a Gaussian blob of a few cells at a random position, drifting, switched on abruptly for a
  random interval of >= 2 time steps (never the whole video), adding a class-specific channel
  direction (a part shared by all anomaly classes plus one per class, fixed by the seed). Motion (the
  onset) and appearance (the direction) both carry signal; the amplitude is drawn from a range, so
  some events are subtle. Sequences get one or two such intervals of snippets.
- Normal confounders: about 30% of normal videos carry harmless motion, camera shake (the whole scene
  jitters from step to step) or a crowd (many weak small blobs moving along a random direction), so
  motion alone is no perfect cue.
Class proportions follow UCF-Crime's official split; names follow its spelling (`Abuse001_x264`).

Two regimes (`difficulty`, docs/data.md): "easy" is the set above, on which the full model reaches
about 0.98 test ROC-AUC and every component ties; "hard" makes the event smaller, shorter and weaker
and the normal videos' distracting motion larger, so components separate (REGIMES holds the numbers):
- the event is a blob of sigma 0.8 cells (1-4 cells above half height, mean 2.8), lasting 2-6 of 16
  steps (mean 4.1; sequences: at most T/8 snippets), with amplitude 1.2-4.0 (mean 2.6); easy: sigma 0.9
  (2-5 cells, mean 3.5), 2-8 steps (mean 5.0), 1.25-4.5 (mean 2.85): about 0.6x the easy event's
  cells x steps x amplitude;
- its motion depends on the class (CLASS_MOTIONS, fixed by the class's index): still, drifting
  (0.5 cells per step), darting (a random walk of 1.5 cells per step) or flickering (on every other step);
- 60% of normal videos carry distracting motion (easy: 30%), a third each: camera shake of 1.2
  cells (easy 0.8), a crowd of amplitude 2.5 (easy 1.5), or a passer-by: one blob with the event's
  size, amplitude range and abrupt onset, on a channel pattern of no anomaly class, so only its
  appearance tells it from an event.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scripts.core.errors import MateError
from scripts.core.fileio import save_npy, write_json, write_text
from scripts.data.manifest import NORMAL_CLASS, UCF_CLASSES, VideoEntry, write_manifest
from scripts.data.ucf_crime import ALL_CLASSES, class_allocation, official_jobs, video_name

MAP_T, MAP_H, MAP_W = 16, 10, 10  # one X3D-L map: 16 time steps on a 10 x 10 grid
SEQ_T_RANGE = (20, 120)  # snippets per sequence video, inclusive
FRAMES_PER_SNIPPET = 16
LAYOUTS = ("map", "sequence")
DTYPES = ("float16", "float32")
ANNOTATION_NAME = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"

# Generative constants, tuned so that pooled features + logistic regression is learnable but not
# trivial and motion alone is a weak cue (the numbers are asserted in tests/test_synthetic.py).
_RANK = 4  # scene components
_OFFSET = 1.0  # mean per-channel level
_NOISE = 0.3
_AMP = (1.25, 4.5)  # anomaly amplitude range; the low end is subtle
_BLOB_SIGMA = 0.9  # cells: the blob covers a few cells
_CONFOUNDER_P = 0.3  # share of normal videos with harmless motion
_SCENE = 0.3  # scale of the scene's channel patterns
_CROWD = 1.5  # amplitude of one crowd blob
_SPLIT_CODE = {"train": 1, "test": 2}


@dataclass(frozen=True)
class Regime:
    """How hard a synthetic set is: the event's size, length and strength, and the normal videos'
    distracting motion. The easy regime's values are the constants above (its files are unchanged)."""
    amp: tuple[float, float]  # event amplitude range (times the class's channel direction)
    blob_sigma: float  # cells: the event's spatial extent
    map_event_max: int  # the longest event of a 16-step map, in steps (the shortest is 2)
    seq_event_div: int  # the longest sequence event is T // seq_event_div snippets
    confounder_p: float  # share of normal videos with distracting motion
    shake: float  # camera shake: standard deviation of the frame's jitter, cells per step (maps)
    seq_shake: float  # camera shake of sequences: jitter of the scene's components per snippet
    crowd: float  # amplitude of one crowd blob
    passer: bool  # a third of the distractors are passers-by (one event-like blob of no anomaly class)
    class_motion: bool  # the event moves by its class (CLASS_MOTIONS); False: drifts up to 0.5 cells per step


REGIMES = {
    "easy": Regime(amp=_AMP, blob_sigma=_BLOB_SIGMA, map_event_max=MAP_T // 2, seq_event_div=4,
                   confounder_p=_CONFOUNDER_P, shake=0.8, seq_shake=0.6, crowd=_CROWD, passer=False,
                   class_motion=False),
    "hard": Regime(amp=(1.2, 4.0), blob_sigma=0.8, map_event_max=6, seq_event_div=8,
                   confounder_p=0.6, shake=1.2, seq_shake=0.9, crowd=2.5, passer=True, class_motion=True),
}
DIFFICULTIES = tuple(REGIMES)
# The hard regime's event motion per anomaly class, by the class's index in UCF_CLASSES modulo 4.
CLASS_MOTIONS = ("still", "drift", "dart", "flicker")


@functools.lru_cache(maxsize=8)
def _world(seed: int, feature_dim: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Data-set-wide facts: per-channel offsets and each anomaly class's channel direction.

    A direction is sparse and positive (an event makes a few units fire), with entries around 0.5, so
    the amplitude is roughly the shift of a firing channel. Crowds use the same kind of pattern on
    random channels: activity, not anomaly.
    """
    rng = np.random.default_rng([seed, 0])
    offset = rng.gamma(2.0, _OFFSET / 2, feature_dim).astype(np.float32)
    shared = _random_units(rng, feature_dim)  # common to all classes, so few videos per class suffice
    return offset, {c: 0.6 * shared + 0.8 * _random_units(rng, feature_dim) for c in UCF_CLASSES}


def _random_units(rng: np.random.Generator, C: int) -> np.ndarray:
    """A sparse positive channel pattern: C/16 units fire with strength 0.5-1, like ReLU features."""
    d = np.zeros(C, np.float32)
    k = max(1, C // 16)
    d[rng.choice(C, k, replace=False)] = rng.uniform(0.5, 1.0, k)
    return d


def _event_interval(rng: np.random.Generator, T: int, max_len: int) -> tuple[int, int]:
    """A random [start, end] (inclusive) of >= 2 steps that never covers the whole video."""
    length = int(rng.integers(2, max(2, min(max_len, T - 1)) + 1))
    start = int(rng.integers(0, T - length + 1))
    return start, start + length - 1


def _blobs(centres: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blobs on the H x W grid: centres [T, N, 2] -> summed profile [T, H, W]."""
    hh, ww = np.meshgrid(np.arange(MAP_H), np.arange(MAP_W), indexing="ij")
    d2 = (hh - centres[..., 0, None, None]) ** 2 + (ww - centres[..., 1, None, None]) ** 2  # [T, N, H, W]
    return np.exp(-d2 / (2 * sigma**2)).sum(axis=1).astype(np.float32)


def _map_video(rng, cls, offset, dirs, C, regime: Regime) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One [C, T, H, W] map and its anomalous time steps (at most one interval)."""
    T, H, W = MAP_T, MAP_H, MAP_W
    kind = _confounder(rng, cls, regime)
    # Scene: each component is a smooth spatial wave (wavelength >= 4 cells) with slow amplitude drift.
    fy, fx = (rng.uniform(-0.25, 0.25, (_RANK, 1, 1, 1)) for _ in range(2))  # cycles per cell
    phase = rng.uniform(0, 2 * np.pi, (_RANK, 1, 1, 1))
    period = rng.uniform(2 * T, 4 * T)
    drift_phase = rng.uniform(0, 2 * np.pi, (_RANK, 1))
    drift = 1 + 0.15 * np.sin(2 * np.pi * np.arange(T) / period + drift_phase)  # [r, T]: slow, < 1 cycle
    shift = rng.normal(0, regime.shake, (T, 2)) if kind == "shake" else np.zeros((T, 2))  # whole-frame jitter
    hh = np.arange(H)[None, None, :, None] + shift[None, :, 0, None, None]  # [1, T, H, 1]
    ww = np.arange(W)[None, None, None, :] + shift[None, :, 1, None, None]  # [1, T, 1, W]
    waves = np.cos(2 * np.pi * (fy * hh + fx * ww) + phase)  # [r, T, H, W]
    fields = (drift[:, :, None, None] * waves).reshape(_RANK, -1).astype(np.float32)  # [r, T*H*W]
    U = rng.normal(0, _SCENE, (C, _RANK)).astype(np.float32)
    x = U @ fields + offset[:, None] + _NOISE * rng.standard_normal((C, T * H * W), dtype=np.float32)
    if kind == "crowd":  # many weak blobs, each moving fast: motion everywhere, no event
        n = int(rng.integers(8, 17))
        walk = np.cumsum(rng.normal(0, 1.0, (T, n, 2)), axis=0)
        centres = np.clip(rng.uniform(0, H - 1, (1, n, 2)) + walk, 0, H - 1)
        x += regime.crowd * _random_units(rng, C)[:, None] * _blobs(centres, 0.6).reshape(1, -1)
    if kind == "passer":  # an event-like blob of no anomaly class: only its appearance tells
        amp, profile, _ = map_event(rng, regime, "drift")
        x += amp * _random_units(rng, C)[:, None] * profile.reshape(1, -1)
    events = []
    if cls != NORMAL_CLASS:
        motion = CLASS_MOTIONS[UCF_CLASSES.index(cls) % len(CLASS_MOTIONS)] if regime.class_motion else None
        amp, profile, interval = map_event(rng, regime, motion)
        x += amp * dirs[cls][:, None] * profile.reshape(1, -1)
        events.append(interval)
    return np.maximum(x, 0).reshape(C, T, H, W), events


def map_event(rng: np.random.Generator, regime: Regime,
              motion: str | None) -> tuple[float, np.ndarray, tuple[int, int]]:
    """An event of a map: (amplitude, profile [T, H, W] in [0, 1], its [start, end] steps, inclusive).

    motion None is the easy regime's (a drift of up to 0.5 cells per step from the onset); otherwise
    one of CLASS_MOTIONS. The profile is 0 outside the interval (abrupt onset and end).
    """
    T, H = MAP_T, MAP_H
    a, b = _event_interval(rng, T, regime.map_event_max)
    steps = np.arange(T)[:, None] - a  # [T, 1]: steps since the onset
    if motion is None or motion == "drift":
        speed = rng.uniform(-0.5, 0.5, 2)
        walk = speed * steps
    elif motion == "still":
        walk = np.zeros((T, 2))
    elif motion == "dart":
        walk = np.cumsum(rng.normal(0, 1.5, (T, 2)), axis=0) * (steps >= 0)
    else:  # flicker: still, on every other step
        walk = np.zeros((T, 2))
    centre = np.clip(rng.uniform(1.5, H - 2.5, 2) + walk, 0, H - 1)
    profile = _blobs(centre[:, None, :], regime.blob_sigma)
    profile[:a] = 0
    profile[b + 1:] = 0
    if motion == "flicker":
        profile[a + 1:b + 1:2] = 0
    return float(rng.uniform(*regime.amp)), profile, (a, b)


def _sequence_video(rng, cls, offset, dirs, D, regime: Regime) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One [T, D] snippet sequence (T varies) and its anomalous snippet intervals (one or two)."""
    T = int(rng.integers(SEQ_T_RANGE[0], SEQ_T_RANGE[1] + 1))
    kind = _confounder(rng, cls, regime)
    t = np.arange(T)[:, None]
    coef = 1 + 0.3 * np.sin(2 * np.pi * t / rng.uniform(0.5 * T, 2 * T) + rng.uniform(0, 2 * np.pi, _RANK))
    if kind == "shake":  # the whole scene jumps from snippet to snippet
        coef = coef + rng.normal(0, regime.seq_shake, (T, _RANK))
    U = rng.normal(0, _SCENE, (_RANK, D))
    x = (coef @ U).astype(np.float32) + offset + _NOISE * rng.standard_normal((T, D), dtype=np.float32)
    if kind == "crowd":  # weak activity flickering along a random direction
        x += (regime.crowd * np.abs(rng.normal(0, 1, (T, 1))) * _random_units(rng, D)).astype(np.float32)
    if kind == "passer":  # an event-like burst of no anomaly class
        a, b = _event_interval(rng, T, T // regime.seq_event_div)
        x[a:b + 1] += (rng.uniform(*regime.amp) * _random_units(rng, D)).astype(np.float32)
    events = []
    if cls != NORMAL_CLASS:
        events.append(_event_interval(rng, T, T // regime.seq_event_div))
        if rng.random() < 0.3:  # a second interval where it fits without touching the first
            a2, b2 = _event_interval(rng, T, T // regime.seq_event_div)
            if b2 < events[0][0] - 1 or a2 > events[0][1] + 1:
                events = sorted(events + [(a2, b2)])
        for a, b in events:
            amp = rng.uniform(*regime.amp) * (1 + 0.2 * rng.standard_normal((b - a + 1, 1)))
            x[a:b + 1] += (amp * dirs[cls]).astype(np.float32)
    return np.maximum(x, 0), events


def _confounder(rng: np.random.Generator, cls: str, regime: Regime) -> str | None:
    """Harmless motion for a share of normal videos: camera shake or crowds, half each (easy); shake,
    crowds or passers-by, a third each (hard)."""
    if cls != NORMAL_CLASS or rng.random() >= regime.confounder_p:
        return None
    if regime.passer:
        return ("shake", "crowd", "passer")[int(rng.integers(0, 3))]
    return "shake" if rng.random() < 0.5 else "crowd"


def generate_video(*, seed: int, split: str, cls: str, index: int, layout: str = "map",
                   feature_dim: int = 192, difficulty: str = "easy") -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One synthetic video in memory (float32) and its anomalous time-step intervals (inclusive).

    Args:
        seed (int): the data set's seed (>= 0).
        split (str): "train" or "test".
        cls (str): a UCF-Crime class or "Normal".
        index (int): the video's index within its class and split (0, 1, ...).
        layout (str): "map" ([C, 16, 10, 10]) or "sequence" ([T, C]).
        feature_dim (int): channels C.
        difficulty (str): "easy" or "hard" (REGIMES).

    The video depends only on these arguments, never on what else is generated, so a larger n_train
    keeps the smaller set's videos and the test videos do not change with n_train.
    """
    _check_choice("layout", layout, LAYOUTS)
    _check_choice("split", split, tuple(_SPLIT_CODE))
    _check_choice("class", cls, ALL_CLASSES)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], ALL_CLASSES.index(cls), index])
    offset, dirs = _world(seed, feature_dim)
    make = _map_video if layout == "map" else _sequence_video
    return make(rng, cls, offset, dirs, feature_dim, REGIMES[difficulty])


def plan_split(n: int, split: str) -> list[tuple[str, int]]:
    """(class, index in class) of every video of a split, anomalous classes first, like the official lists."""
    alloc = class_allocation(n, split)
    return [(c, i) for c in ALL_CLASSES for i in range(alloc[c])]


def _check_args(n_train, n_test, seed, layout, dtype, feature_dim, difficulty) -> None:
    _check_choice("layout", layout, LAYOUTS)
    _check_choice("difficulty", difficulty, DIFFICULTIES)
    _check_choice("dtype", dtype, DTYPES)
    for name, value, low in (("n_train", n_train, 2), ("n_test", n_test, 2), ("feature_dim", feature_dim, 1),
                             ("seed", seed, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            why = " (one normal and one anomalous video)" if low == 2 else ""
            raise MateError(f"{name} must be an integer >= {low}{why}, got {value!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MateError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _annotation_line(name: str, cls: str, events: list[tuple[int, int]]) -> str:
    """UCF-Crime's row: snippets [a, b] cover frames [16a, 16b + 15]; -1 pads to two intervals."""
    F = FRAMES_PER_SNIPPET
    frames = [v for a, b in events for v in (F * a, F * b + F - 1)] + [-1] * (4 - 2 * len(events))
    # Double blanks between fields and after the last one, as in the original file.
    return "  ".join([f"{name}.mp4", cls] + [str(v) for v in frames]) + "  "


def _sidecar(name: str, shape: tuple[int, ...]) -> dict:
    """The feature_extractor.py sidecar, so frame-level scoring knows a snippet covers 16 frames."""
    return {"video": f"{name}.mp4", "fps": 30.0, "num_frames": shape[0] * FRAMES_PER_SNIPPET,
            "frames_per_clip": FRAMES_PER_SNIPPET, "sampling_rate": 1, "stride": FRAMES_PER_SNIPPET,
            "backbone": "synthetic", "weights": "none", "layout": "sequence", "shape": list(shape)}


NAMINGS = ("numbered", "official")


def numbered_jobs(n_train: int, n_test: int) -> list[tuple[str, str, int, str]]:
    """(split, class, index in class, name): names number from 1 per class, the test numbers after the
    training ones so a name never repeats."""
    n_train_cls = class_allocation(n_train, "train")
    jobs = [("train", c, i, video_name(c, i + 1, "train")) for c, i in plan_split(n_train, "train")]
    return jobs + [("test", c, i, video_name(c, n_train_cls[c] + i + 1, "test")) for c, i in plan_split(n_test, "test")]


def make_synthetic(out_dir: str | os.PathLike, *, n_train: int = 200, n_test: int = 60, seed: int = 0,
                   layout: str = "map", feature_dim: int = 192, dtype: str = "float16",
                   difficulty: str = "easy", names: str = "numbered", progress: bool = True) -> tuple[list[VideoEntry], list[VideoEntry]]:
    """Write a synthetic UCF-Crime-shaped data set and its train/test manifests.

    Args:
        out_dir (path): folder for `features/<Class>/<Name>.npy`, `train.txt` and `test.txt` (and, for
            sequences, `.json` sidecars and the temporal annotation file of the test videos).
        n_train (int): training videos, split over classes like UCF-Crime's training list.
        n_test (int): test videos, split like UCF-Crime's test list; numbers follow the training ones.
        seed (int): the same seed gives bit-identical files.
        layout (str): "map" for [C, 16, 10, 10] X3D-L-like maps, "sequence" for [T, C] snippets.
        feature_dim (int): channels C (192 as X3D-L).
        dtype (str): "float16" (small folder) or "float32".
        difficulty (str): "easy" (the default set) or "hard" (smaller, shorter, weaker events and more
            distracting motion; REGIMES and docs/data.md).
        names (str): "numbered" (Abuse001_x264 ... per class, n_train / n_test videos) or "official" (the
            1,900 videos of UCF-Crime's official split by their names; n_train and n_test are not used).
        progress (bool): show a progress bar over videos.

    Returns:
        The train entries and the test entries, in manifest order.
    """
    _check_args(n_train, n_test, seed, layout, dtype, feature_dim, difficulty)
    _check_choice("names", names, NAMINGS)
    out = Path(os.path.abspath(out_dir))  # absolute, as read_manifest returns them
    jobs = official_jobs() if names == "official" else numbered_jobs(n_train, n_test)
    entries: dict[str, list[VideoEntry]] = {"train": [], "test": []}
    annotation = []
    bar = tqdm(jobs, desc=f"synthetic {layout}", unit="video", disable=not progress)
    for split, cls, index, name in bar:
        x, events = generate_video(seed=seed, split=split, cls=cls, index=index, layout=layout,
                                   feature_dim=feature_dim, difficulty=difficulty)
        path = out / "features" / cls / f"{name}.npy"
        save_npy(path, x.astype(dtype))
        if layout == "sequence":
            write_json(path.with_suffix(".json"), _sidecar(name, x.shape))
            if split == "test":
                annotation.append(_annotation_line(name, cls, events))
        entries[split].append(VideoEntry(path=path, label=int(cls != NORMAL_CLASS), cls=cls))
    for split in ("train", "test"):
        header = (f"synthetic MATE data set (scripts/data/synthetic.py), not UCF-Crime: {split} split\n"
                  f"seed={seed} layout={layout} feature_dim={feature_dim} dtype={dtype}"
                  + (f" difficulty={difficulty}" if difficulty != "easy" else ""))
        write_manifest(out / f"{split}.txt", entries[split], header=header)
    if layout == "sequence":
        write_text(out / ANNOTATION_NAME, "\n".join(annotation) + "\n")
    return entries["train"], entries["test"]
