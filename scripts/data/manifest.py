"""Manifests: the text lists of videos every script reads and writes (docs/design.md §2).

One video per line, `<feature_path> [<label> [<class>]]`, `#` comments and blank lines ignored. A
path-only line (the published lists, `X3D_Videos/Abuse/Abuse001_x264.npy`) gets its label from the
name (`Normal` -> 0, else 1) and its class from the parent folder or the name's leading letters; a
name in XD-Violence's form (`..._label_B2-G-0`, scripts/data/xd_violence.py) gets both from its label codes
(`label_A` -> 0, Normal; else 1 and the first code's class). Names may hold `#` (XD-Violence's do):
only a line that starts with `#` is a comment.
Relative paths resolve against the current folder, then the manifest's folder. Manifests written
here store paths relative to their own folder, so a data folder can be moved as a whole. A path with
spaces (or quotes) is written shell-quoted, `'dir with spaces/Abuse 004.npy' 1 Abuse`; readers also
take tab-separated fields. The same file listed twice, under any two paths, is an error.
"""
from __future__ import annotations

import functools
import os
import re
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from scripts.core.errors import MateError
from scripts.core.fileio import read_lines, write_text
from scripts.data.xd_violence import XD_CLASSES, parse_name as parse_xd_name

# UCF-Crime's 13 anomaly categories, in the dataset's own spelling, and the normal class.
UCF_CLASSES: tuple[str, ...] = (
    "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
    "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism",
)
NORMAL_CLASS = "Normal"
# Every class name we know, in table order: UCF-Crime's, then XD-Violence's not already among them.
KNOWN_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(UCF_CLASSES + tuple(XD_CLASSES.values())))
_CLASS_BY_LOWER = {c.lower(): c for c in KNOWN_CLASSES + (NORMAL_CLASS,)}


@dataclass(frozen=True)
class VideoEntry:
    """One manifest line: the feature file, its video-level label (0 normal, 1 anomalous), class."""

    path: Path
    label: int
    cls: str

    @property
    def name(self) -> str:
        """The video's name: the feature file name without extension (`Abuse001_x264`)."""
        return self.path.stem


def infer_label(path: str | os.PathLike) -> int:
    """An XD-Violence name's label codes (`label_A` normal, 0; any other code 1); else the published
    lists' rule: a name containing `Normal` is normal (0), anything else anomalous."""
    xd = parse_xd_name(path)
    if xd is not None:
        return xd.label
    return 0 if "normal" in Path(path).name.lower() else 1


def infer_class(path: str | os.PathLike, label: int) -> str:
    """Normal for label 0; else an XD-Violence name's first class (`label_B2-G-0` -> Shooting); else a
    UCF-Crime class from the parent folder, else the name's letters."""
    if label == 0:
        return NORMAL_CLASS
    xd = parse_xd_name(path)
    if xd is not None and xd.cls is not None:
        return xd.cls
    p = Path(path)
    folder = _CLASS_BY_LOWER.get(p.parent.name.lower())
    if folder is not None and folder != NORMAL_CLASS:
        return folder
    letters = re.match(r"[A-Za-z]+", p.stem)
    if letters is None:
        return "Anomaly"
    return _CLASS_BY_LOWER.get(letters.group(0).lower(), letters.group(0))


def split_fields(text: str, *, source: str = "<line>") -> list[str]:
    """A line's fields: tab-separated when it holds a tab; shell-quoted when it starts with a quote
    (`'dir with spaces/Abuse 004.npy' 1 Abuse`, as quote_path writes it); else split on whitespace."""
    if "\t" in text:
        return [f.strip() for f in text.split("\t") if f.strip()]
    if text[0] in "'\"":
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise MateError(f"{source}: unbalanced quotes in {text!r} ({exc})") from None
    return text.split()


def quote_path(path: str) -> str:
    """A path as a manifest field: as it is when plain, shell-quoted when it holds whitespace or a
    quote or starts with '#' (every reader, split_fields, takes both)."""
    if path and not any(c.isspace() or c in "'\"" for c in path) and not path.startswith("#"):
        return path
    return shlex.quote(path)


def parse_line(text: str, *, source: str = "<line>") -> tuple[str, int, str] | None:
    """Parse one manifest line into (path, label, class); None for a blank or comment line."""
    text = text.strip()
    if not text or text.startswith("#"):  # whole-line comments only: XD-Violence names contain '#'
        return None
    fields = split_fields(text, source=source)
    if len(fields) > 3:
        raise MateError(f"{source}: expected '<path> [<label> [<class>]]', got {len(fields)} fields "
                        "(a path with spaces must be quoted, 'like this.npy', or the fields tab-separated)")
    path = fields[0]
    if len(fields) >= 2:
        if fields[1] not in ("0", "1"):
            raise MateError(f"{source}: label '{fields[1]}' is not 0 or 1")
        label = int(fields[1])
    else:
        label = infer_label(path)
    if len(fields) == 3:
        cls = _CLASS_BY_LOWER.get(fields[2].lower(), fields[2])
        if label == 1 and cls == NORMAL_CLASS:
            raise MateError(f"{source}: label 1 (anomalous) contradicts class 'Normal'")
        if label == 0 and cls != NORMAL_CLASS:
            raise MateError(f"{source}: label 0 (normal) contradicts class '{cls}'")
    else:
        cls = infer_class(path, label)
    return path, label, cls


def resolve_path(raw: str, manifest: Path, *, check_exists: bool = True) -> Path:
    """Resolve a listed path: absolute as is; relative against the current folder, then the manifest's."""
    p = Path(raw).expanduser()
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = [Path.cwd() / p, manifest.parent / p]
    if not check_exists:
        return candidates[-1] if not candidates[0].exists() else candidates[0]
    for c in candidates:
        if c.exists():
            return Path(os.path.normpath(c))
    tried = " or ".join(str(c) for c in candidates)
    raise MateError(f"{manifest}: feature file '{raw}' not found (looked for {tried})")


# A per-crop line's name, `<video>__<k>` (scripts/data/crops.py)
_CROP = re.compile(r"^(?P<video>.+)__(?P<crop>\d+)$")


def crop_video(name: str) -> str | None:
    """`Abuse001_x264__3` -> `Abuse001_x264`; None for a name without a crop suffix."""
    m = _CROP.match(name)
    return m.group("video") if m else None


def crop_index(name: str) -> int | None:
    """`Abuse001_x264__3` -> 3; None for a name without a crop suffix. A per-crop line whose file holds all
    of a video's crops (`[T, K, D]`, RTFM's family) reads crop k of it (scripts/dataset.py: load_array)."""
    m = _CROP.match(name)
    return int(m.group("crop")) if m else None


def read_manifest(path: str | os.PathLike, *, check_exists: bool = True,
                  require_both_labels: bool = False) -> list[VideoEntry]:
    """Read a manifest into entries, validating every line (errors name the file and line)."""
    manifest = Path(path)
    if manifest.is_dir():
        raise MateError(f"{manifest}: is a folder, not a manifest")
    lines = read_lines(manifest, "manifest")
    entries: list[VideoEntry] = []
    seen: dict[tuple[Path, int | None], int] = {}
    for lineno, line in enumerate(lines, start=1):
        parsed = parse_line(line, source=f"{manifest}:{lineno}")
        if parsed is None:
            continue
        raw, label, cls = parsed
        resolved = resolve_path(raw, manifest, check_exists=check_exists)
        same = Path(_real_path(resolved))  # one file reached through a symlinked folder too
        key = (same, crop_index(resolved.stem))  # the crop lines of one [T, K, D] file are K inputs
        if key in seen:
            raise MateError(f"{manifest}:{lineno}: '{raw}' is listed twice (first on line {seen[key]}, "
                            f"the same file {same})")
        seen[key] = lineno
        entries.append(VideoEntry(path=resolved, label=label, cls=cls))
    if not entries:
        raise MateError(f"{manifest}: manifest lists no videos")
    if require_both_labels:
        check_both_labels(entries, source=str(manifest))
    return entries


def check_both_labels(entries: Sequence[VideoEntry], *, source: str) -> None:
    """Training and AUCs need both classes; one class only is a user fault."""
    labels = {e.label for e in entries}
    if labels != {0, 1}:
        only = "normal" if labels == {0} else "anomalous"
        raise MateError(f"{source}: all {len(entries)} videos are {only}; both labels 0 and 1 are needed")


# The header line of a training manifest that names its test manifest (relative to its own folder);
# makelist.py writes it, StratifiedKFold.py reads it to write fold{i}_test.txt.
TEST_MANIFEST_KEY = "test manifest:"


def relative_to_folder(path: str | os.PathLike, folder: str | os.PathLike) -> str:
    """`path` relative to `folder`, in POSIX form (how manifests store paths); the folders with links
    resolved, the file's own name kept: a link named `Abuse001_x264.npy` to `Abuse001_x264_i3d.npy`
    (import_peers.py) names the video `Abuse001_x264`."""
    head, name = os.path.split(os.path.abspath(path))
    return Path(os.path.relpath(os.path.join(_real_folder(head), name), _real_folder(os.path.abspath(folder)))).as_posix()


def _real_path(path: str | os.PathLike) -> str:
    """os.path.realpath, with each folder resolved once (a manifest lists 1,610 files of a few folders:
    resolving every path component of every file again took seconds)."""
    path = os.path.abspath(path)
    if os.path.islink(path):
        return os.path.realpath(path)
    head, name = os.path.split(path)
    return os.path.join(_real_folder(head), name)


@functools.lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def format_entry(entry: VideoEntry, relative_to: Path) -> str:
    return f"{quote_path(relative_to_folder(entry.path, relative_to))} {entry.label} {quote_path(entry.cls)}"


def header_value(path: str | os.PathLike, key: str) -> str | None:
    """The text after `# <key>` in a manifest's header comments, or None."""
    for line in read_lines(path, "manifest"):
        text = line.lstrip("#").strip()
        if line.startswith("#") and text.startswith(key):
            return text[len(key):].strip()
    return None


def companion_test_manifest(train_manifest: str | os.PathLike) -> Path | None:
    """The test manifest that belongs to a training manifest: the one its header names (makelist.py
    writes it), else the sibling whose name has 'test' for 'train' (ucf_x3d_train.txt ->
    ucf_x3d_test.txt); None when neither exists."""
    train_manifest = Path(train_manifest)
    named = header_value(train_manifest, TEST_MANIFEST_KEY)
    if named:
        candidate = train_manifest.parent / named
        if candidate.is_file():
            return candidate
    if "train" in train_manifest.name:
        candidate = train_manifest.with_name(train_manifest.name.replace("train", "test"))
        if candidate.is_file():
            return candidate
    return None


def write_manifest(path: str | os.PathLike, entries: Iterable[VideoEntry], *, header: str = "") -> Path:
    """Write `path label class` lines, paths relative to the manifest's folder, atomically."""
    path = Path(path)
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    lines += [format_entry(e, path.parent) for e in entries]
    return write_text(path, "\n".join(lines) + "\n")


def class_counts(entries: Iterable[VideoEntry]) -> Counter:
    return Counter(e.cls for e in entries)


def format_count_table(columns: dict[str, Sequence[VideoEntry]]) -> str:
    """A per-class count table, one column per named list (e.g. train / test), with totals."""
    counts = {name: class_counts(es) for name, es in columns.items()}
    known = [c for c in KNOWN_CLASSES + (NORMAL_CLASS,) if any(c in cnt for cnt in counts.values())]
    other = sorted({c for cnt in counts.values() for c in cnt} - set(known))
    classes = known + other
    width = max([len("class"), len("total")] + [len(c) for c in classes])
    head = f"{'class':<{width}}" + "".join(f"{n:>8}" for n in columns)
    rows = [head, "-" * len(head)]
    for c in classes:
        rows.append(f"{c:<{width}}" + "".join(f"{counts[n].get(c, 0):>8}" for n in columns))
    rows.append("-" * len(head))
    rows.append(f"{'total':<{width}}" + "".join(f"{len(es):>8}" for es in columns.values()))
    return "\n".join(rows)
