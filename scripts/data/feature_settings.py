"""How features were made: the extraction settings a model is trained on, and the check that whatever
it scores was made the same way (docs/design.md §2, sidecar; §5, checkpoint).

feature_extractor.py writes a sidecar `<name>.json` beside every feature file. Training reads the
sidecars of all its videos, which must agree, and stores the settings in the checkpoint
(`feature["extraction"]`). test.py compares a test manifest's sidecars with them, and builds the
extractor for `--video` from them. Features without sidecars (the shared UCF-Crime maps) are recorded
as such; for maps the published preprocessing is then the documented assumption (PUBLISHED).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

from scripts.core.errors import MateError
from scripts.data.sidecar import read_sidecar
from scripts.data.manifest import VideoEntry

# The sidecar keys that decide what a feature means; decoder, dtype and frame counts do not.
KEYS = ("backbone", "weights", "layout", "sequence_feature", "frames_per_clip", "sampling_rate", "stride",
        "clip_sampling", "side_size", "crop_size", "crops")
# Compared only where both sides record it: sidecars written before it was recorded lack it. precision is
# how the backbone computed (float32 on the CPU, float16 autocast on CUDA: features about 1e-3 apart).
OPTIONAL_KEYS = ("precision",)
# How the shared UCF-Crime X3D features were made (data/published/README.md); the weights are the
# official Kinetics-400 X3D_L.pyth, whose hash no sidecar recorded, so they are not compared.
PUBLISHED = {"backbone": "x3d_l", "layout": "map", "frames_per_clip": 16, "sampling_rate": 5, "stride": 80,
             "clip_sampling": "uniform", "side_size": 320, "crop_size": 320, "crops": 1}
FORCE_HINT = "pass --force_settings to score anyway"


def weights_id(weights: Any) -> Any:
    """The part of a sidecar's `weights` that names the weights: the file's hash, not its path
    (`checkpoints/X3D_L.pyth sha256:0a1b` and `model_zoo:X3D_L.pyth sha256:0a1b` are the same)."""
    if isinstance(weights, str):
        for token in weights.split():
            if token.startswith("sha256:"):
                return token
    return weights


def settings_of(sidecar: dict) -> dict:
    """The extraction settings in a sidecar (only the keys it has)."""
    found = {k: sidecar[k] for k in KEYS + OPTIONAL_KEYS if k in sidecar}
    if "weights" in found:
        found["weights"] = weights_id(found["weights"])
    return found


def first_difference(a: dict, b: dict, keys: Sequence[str] = KEYS) -> str | None:
    """The first key (in KEYS order) whose value differs between two settings, then the first of
    OPTIONAL_KEYS that both record and that differs; None when they agree."""
    required = [k for k in keys if k not in OPTIONAL_KEYS]
    return next((k for k in required if a.get(k) != b.get(k)), None) or next(
        (k for k in OPTIONAL_KEYS if k in a and k in b and a[k] != b[k]), None)


def describe(settings: dict | None) -> str:
    """One line of settings for a person: `x3d_xs map, 4 x 12 frames (uniform), stride 48, ...`."""
    if not settings:
        return "unknown"
    s = settings
    text = f"{s.get('backbone')} {s.get('layout')}"
    if s.get("layout") == "sequence":
        text += f" ({s.get('sequence_feature')})"
    text += (f", clips of {s.get('frames_per_clip')} x {s.get('sampling_rate')} frames "
             f"({s.get('clip_sampling')}), stride {s.get('stride')}, short side {s.get('side_size')}, "
             f"crop {s.get('crop_size')}, {s.get('crops')} crop(s)")
    if "weights" in s:
        text += f", weights {s['weights']}"
    return text


CLOCK_FPS = 30  # the published extractor's frames_per_second: a clip of F x R frames lasts F * R / 30 s


def frame_rule_equal(num_frames: int, sampling_rate: int, stride: int, sampling: str) -> bool:
    """Whether at CLOCK_FPS the clips in seconds (scripts/extraction/clips.py) are the frame-count rule's of
    earlier versions (windows of num_frames x sampling_rate frames from frame i * stride): always for
    strided; for uniform when the float window is not longer than the exact one (16 x 5 / 30 s is shorter
    by 1e-16, but 4 x 12 / 30 s is longer, so pytorchvideo's first window also takes the frame at exactly
    1.6 s) and the stride is the window (another stride's starts accumulate float error in pytorchvideo's
    arithmetic)."""
    window = num_frames * sampling_rate
    return sampling == "strided" or (stride == window and Fraction(window / CLOCK_FPS) <= Fraction(window, CLOCK_FPS))


def check_clock(sidecar: dict, path: str | Path) -> None:
    """A feature file made by the frame-count clip rule of earlier versions (its sidecar has no
    `window_s`) means the published windows only at 30 fps (scripts/extraction/clips.py); at any other frame rate
    (or an unknown one) it is refused in one line naming it, so features of two rules never mix."""
    if "window_s" in sidecar or "layout" not in sidecar:
        return
    fps = sidecar.get("fps")
    try:
        same = frame_rule_equal(int(sidecar["frames_per_clip"]), int(sidecar["sampling_rate"]),
                                int(sidecar["stride"]), sidecar.get("clip_sampling", "uniform"))
    except (KeyError, TypeError, ValueError):
        same = False
    if fps is not None and abs(float(fps) - 30.0) < 1e-3 and same:
        return
    at = f"{fps:g} fps" if fps is not None else "an unknown frame rate"
    if fps is not None and abs(float(fps) - 30.0) < 1e-3:
        at += " with clips whose pytorchvideo window holds one frame more"
    raise MateError(f"{Path(path).with_suffix('.json')}: made by an older feature_extractor.py's frame-count "
                    f"clip rule at {at}, where its clips are not the published windows in seconds; extract "
                    "the video again (feature_extractor.py --overwrite)")


def read_extraction(entries: Sequence[VideoEntry], *, source: str | Path) -> dict:
    """The extraction record of a list of videos: {"source": "sidecars", "settings": {...}} when every
    video has a sidecar and all agree, {"source": "none", "settings": None} when none has one.
    A disagreement (or some videos with a sidecar and some without) is one MateError naming two videos."""
    settings = reference = missing = None
    for entry in entries:
        sidecar = read_sidecar(entry.path)
        if sidecar is None:
            missing = missing or entry
            continue
        check_clock(sidecar, entry.path)
        found = settings_of(sidecar)
        if settings is None:
            settings, reference = found, entry
            continue
        key = first_difference(settings, found)
        if key is not None:
            raise MateError(f"{source}: {reference.name} and {entry.name} were extracted with different "
                            f"settings ({key}: {settings.get(key)!r} vs {found.get(key)!r}); train and score "
                            f"on features made one way")
    if settings is not None and missing is not None:
        raise MateError(f"{source}: {reference.name} has an extractor sidecar (.json) but {missing.name} has "
                        f"none; features made in different ways cannot be told apart")
    if settings is None:
        return {"source": "none", "settings": None}
    return {"source": "sidecars", "settings": settings}


def expected_settings(feature: dict) -> tuple[dict | None, str]:
    """What a checkpoint's features were made with and how that is known: its sidecars' settings, the
    published preprocessing (map features without sidecars), or None (nothing to compare with)."""
    record = feature.get("extraction")
    if record is None:
        return None, "the checkpoint records no extraction settings (made before they were recorded)"
    if record["settings"] is not None:
        return record["settings"], "the sidecars of its training features"
    if not feature.get("sequence"):
        return dict(PUBLISHED), ("the published preprocessing of the shared UCF-Crime features (its training "
                                 "features had no sidecars)")
    return None, "its training features had no sidecars"


def check_test_features(entries: Sequence[VideoEntry], feature: dict, *, test_list: Path, checkpoint: Path,
                        force: bool = False) -> str:
    """Refuse test features made otherwise than the checkpoint's training features (unless `force`);
    returns a line saying what was checked."""
    expected, known_from = expected_settings(feature)
    if expected is None:
        return f"extraction settings not checked: {known_from}"
    found = read_extraction(entries, source=test_list)
    if found["settings"] is None:
        if feature["extraction"]["settings"] is None:  # both without sidecars: nothing to tell apart
            return "extraction settings: no sidecars, as in training"
        fault = f"{test_list}: its features have no sidecars, so they cannot be checked against " \
                f"the settings {checkpoint} was trained on ({describe(expected)})"
    else:
        key = first_difference(expected, found["settings"], keys=list(expected))
        if key is None:
            return f"extraction settings match {known_from}: {describe(found['settings'])}"
        fault = (f"{test_list}: features extracted with {key} {found['settings'].get(key)!r}, but {checkpoint} "
                 f"was trained on {key} {expected.get(key)!r} ({known_from})")
    if not force:
        raise MateError(f"{fault}; {FORCE_HINT}")
    return f"warning: {fault} (scored anyway: --force_settings)"


# The settings that follow from the backbone preset; a forced --backbone drops them so its preset applies.
CLIP_KEYS = ("frames_per_clip", "sampling_rate", "stride", "side_size", "crop_size", "weights")


def video_settings(feature: dict, *, backbone: str | None, crops: int | None,
                   force: bool = False) -> tuple[dict, str]:
    """The extraction settings to score a new video with, and a line saying where they come from: the
    checkpoint's (its training features' sidecars, or the published preprocessing for maps without
    sidecars). A --backbone or --crops flag that contradicts them is refused unless `force`."""
    expected, known_from = expected_settings(feature)
    layout = "sequence" if feature["sequence"] else "map"
    if expected is None:  # nothing recorded: the flags, else x3d_l's preset
        settings = {"backbone": backbone or "x3d_l", "crops": crops or 1, "layout": layout}
        return settings, f"extraction settings: {known_from}; using the {settings['backbone']} preset"
    settings = dict(expected)
    for key, value in (("backbone", backbone), ("crops", crops)):
        if value is None or value == expected.get(key):
            continue
        if not force:
            raise MateError(f"--{key} {value} contradicts the checkpoint: its features were made with {key} "
                            f"{expected.get(key)!r} ({known_from}); drop the flag, or {FORCE_HINT}")
        settings[key] = value
        if key == "backbone":
            for k in CLIP_KEYS:
                settings.pop(k, None)
    said = f"extraction settings from {known_from}: {describe(settings)}"
    return settings, said + (" (--force_settings)" if settings != expected else "")


def check_video_weights(expected: Any, used: str, *, random_weights: bool, force: bool) -> None:
    """The X3D weights of --video must be those of the training features (by hash), unless `force`."""
    if expected is None or weights_id(used) == expected or force:
        return
    if expected == "random" and not random_weights:
        raise MateError("the checkpoint's training features were made with random X3D weights (a smoke "
                        f"test); pass --random_weights, or {FORCE_HINT}")
    raise MateError(f"X3D weights {used} differ from those of the checkpoint's training features ({expected}); "
                    f"pass the same file with --backbone_checkpoint, or {FORCE_HINT}")
