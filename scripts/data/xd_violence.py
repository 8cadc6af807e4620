"""XD-Violence's video names: the label, the classes and the crop they carry (docs/training_and_evaluation.md,
"XD-Violence").

XD-Violence (Wu et al., ECCV 2020) names every video `<source>__#<span>_label_<codes>`, e.g.
`v=u5SF4SlqNDQ__#00-00-00_00-01-00_label_G-0-0` or `Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6`:
up to three class codes padded with `0`, `A` alone for a normal video. A video may carry several
classes (`label_B2-G-0`: shooting and explosion); all are kept, in the name's order, and the first is
the class of per-class tables. The public I3D features add the crop to the file name
(`..._label_A__3.npy`, crops 0-4).

    from scripts.data.xd_violence import parse_name
    parse_name("Bad.Boys.II.2003__#00-06-42_00-10-00_label_B2-G-0.npy").classes   # ('Shooting', 'Explosion')

The movie names hold dots, so a name is never cut at its first dot: only a known file extension is
removed (`video_stem`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePath

# XD-Violence's six violence classes by their label code (B3 does not occur in the data set).
XD_CLASSES: dict[str, str] = {"B1": "Fighting", "B2": "Shooting", "B4": "Riot", "B5": "Abuse",
                              "B6": "CarAccident", "G": "Explosion"}
NORMAL_CODE = "A"
PADDING_CODE = "0"
DATASET = "XD-Violence"

# Extensions a video or feature name may carry in lists and annotation files; anything else after a dot
# is part of the name (`Bad.Boys.1995__#...`).
KNOWN_EXTENSIONS = (".npy", ".mp4", ".avi", ".mkv", ".webm", ".mov", ".wav")
_LABEL = re.compile(r"_label_(?P<codes>[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*)(?:__(?P<crop>\d+))?$")


@dataclass(frozen=True)
class XDName:
    """One parsed XD-Violence name.

    Args:
        video (str): the video's name, without extension and crop suffix.
        codes (tuple of str): the label codes without padding, e.g. ("B2", "G"), ("A",) when normal.
        crop (int or None): the crop of a per-crop feature file (`__3`), else None.
    """

    video: str
    codes: tuple[str, ...]
    crop: int | None = None

    @property
    def label(self) -> int:
        """0 for a normal video (`label_A`), 1 when any violence code is present."""
        return 0 if all(c == NORMAL_CODE for c in self.codes) else 1

    @property
    def classes(self) -> tuple[str, ...]:
        """Every violence class, in the name's order; an unknown code stands for itself; () when normal."""
        return tuple(XD_CLASSES.get(c, c) for c in self.codes if c != NORMAL_CODE)

    @property
    def cls(self) -> str | None:
        """The first class, the one per-class tables use; None for a normal video."""
        return self.classes[0] if self.classes else None


def video_stem(path: str | os.PathLike) -> str:
    """A file's name without a known extension (`KNOWN_EXTENSIONS`): dots inside names are kept."""
    name = PurePath(path).name
    stem, dot, ext = name.rpartition(".")
    return stem if dot and ("." + ext).lower() in KNOWN_EXTENSIONS else name


def parse_name(path: str | os.PathLike) -> XDName | None:
    """The XD-Violence name of a path or name (any folder, a known extension, a crop suffix), or None
    when it is not named like an XD-Violence video."""
    stem = video_stem(path)
    match = _LABEL.search(stem)
    if match is None:
        return None
    codes = tuple(c for c in match.group("codes").split("-") if c != PADDING_CODE)
    if not codes:
        return None
    crop = match.group("crop")
    video = stem[:match.start("crop") - 2] if crop is not None else stem
    return XDName(video=video, codes=codes, crop=None if crop is None else int(crop))


def is_xd_name(path: str | os.PathLike) -> bool:
    return parse_name(path) is not None


def video_name(path: str | os.PathLike) -> str:
    """The video a list line or file names: no extension, and no crop suffix for XD-Violence names
    (`..._label_A__0.npy` -> `..._label_A`), so the five crop files of a video name one video."""
    xd = parse_name(path)
    return xd.video if xd is not None else video_stem(path)
