"""Is a downloaded feature folder complete? (makelist.py --check DIR --check_format F; docs/data.md, "Where
the data lives").

Each format states what a complete download holds: how many .npy files, named how, of what array shape.
The check reads only each file's .npy header (shape and dtype, no data), so a 70 GB folder is checked in
seconds, and prints one line per finding: the count, the files whose shape is wrong, the expected names
missing and the unexpected ones (first few by name, the rest counted). UCF-Crime names come from the
official split (data/ucf_crime/); for XD-Violence and ShanghaiTech, whose lists this repo does not ship,
count and shapes are checked. Returns whether the folder is complete (makelist.py exits 1 if not).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scripts.core.errors import MateError

SHOW = 5  # names listed per finding; the rest are counted


@dataclass(frozen=True)
class Download:
    description: str
    count: int
    shape: tuple  # None: any length along that axis (T)
    crops: int = 1  # files per video (Wu's per-crop files: video__0 .. video__{crops-1})
    suffix: str = ""  # after the video name, before .npy (RTFM: _i3d)
    ucf_names: bool = False


FORMATS = {
    "ucf_x3d": Download("UCF-Crime X3D-L maps, the shared MATE features", 1900, (192, 16, 10, 10), ucf_names=True),
    "ucf_rtfm": Download("UCF-Crime 10-crop ResNet50-I3D, RTFM / MGFN / S3R", 1900, (None, 10, 2048), suffix="_i3d",
                         ucf_names=True),
    "ucf_wu": Download("UCF-Crime I3D per crop (Wu et al.), UR-DMU / PEL4VAD / BN-WVAD", 19000, (None, 1024), crops=10,
                       ucf_names=True),
    "xd_wu": Download("XD-Violence I3D per crop (Wu et al.), 3,954 train + 800 test videos x 5 crops", 23770,
                      (None, 1024), crops=5),
    "sh_rtfm": Download("ShanghaiTech 10-crop I3D, RTFM's (238 train + 199 test)", 437, (None, 10, 2048),
                        suffix="_i3d"),
}


def header_shape(path: Path) -> tuple[tuple[int, ...] | None, str]:
    """(shape, dtype) from a .npy header without reading the data; (None, why) when it is not one."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        return tuple(shape), str(dtype)
    except (OSError, ValueError) as exc:
        return None, " ".join(str(exc).split()) or type(exc).__name__


def expected_stems(spec: Download) -> set[str] | None:
    if not spec.ucf_names:
        return None
    from scripts.data.lists import OFFICIAL_TEST, OFFICIAL_TRAIN, read_split

    videos = read_split(OFFICIAL_TRAIN) + read_split(OFFICIAL_TEST)
    if spec.crops > 1:
        return {f"{v}__{k}" for v in videos for k in range(spec.crops)}
    return {v + spec.suffix for v in videos}


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:SHOW])
    return shown + (f" and {len(names) - SHOW} more" if len(names) > SHOW else "")


def check_download(folder: Path, name: str) -> tuple[list[str], bool]:
    """One line per finding and whether `folder` holds a complete download of format `name`."""
    if name not in FORMATS:
        raise MateError(f"--check_format: '{name}' is not one of {', '.join(FORMATS)}")
    if not folder.is_dir():
        raise MateError(f"{folder}: not a folder")
    spec = FORMATS[name]
    files = sorted(p for p in folder.rglob("*.npy") if p.is_file())
    lines = [f"{folder}: {len(files)} .npy files; a complete {name} download holds {spec.count} "
             f"({spec.description}), each of shape [{', '.join('T' if d is None else str(d) for d in spec.shape)}]"]
    bad = []
    for path in files:
        shape, dtype = header_shape(path)
        if shape is None:
            bad.append(f"{path.relative_to(folder)} (not a .npy array: {dtype})")
        elif len(shape) != len(spec.shape) or any(e is not None and e != d for e, d in zip(spec.shape, shape)):
            bad.append(f"{path.relative_to(folder)} {list(shape)}")
    if bad:
        lines.append(f"wrong shape: {len(bad)} file(s): {_listed(bad)}")
    complete = len(files) == spec.count and not bad
    expected = expected_stems(spec)
    if expected is not None:
        stems = {p.stem for p in files}
        missing, extra = sorted(expected - stems), sorted(stems - expected)
        if missing:
            lines.append(f"missing: {len(missing)} video file(s): {_listed(missing)}")
        if extra:
            lines.append(f"extra: {len(extra)} file(s) not in the official split: {_listed(extra)}")
        complete = complete and not missing and not extra
    elif len(files) != spec.count:
        lines.append(f"count: {len(files)} of {spec.count} files ({'missing' if len(files) < spec.count else 'extra'} "
                     f"{abs(spec.count - len(files))}; names are not checked for {name})")
    lines.append("complete" if complete else "incomplete")
    return lines, complete
