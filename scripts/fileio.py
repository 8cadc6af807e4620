"""Atomic writes: every output goes to a temp file in the same folder, then is renamed into place.

A crash or a Ctrl-C mid-write therefore never leaves a half-written file, and a file that was already
there is only replaced by a complete new one. Files get the mode a plain open() would give them
(0666 less the umask: 0644 under the usual 022), not mkstemp's private 0600.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it is renamed onto `path`, on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs are as readable as open() makes them
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `path`."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    def _save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object stops np.save from appending ".npy" to the temp name
            np.save(f, array)

    return atomic_write(path, _save)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def read_lines(path: str | os.PathLike, what: str) -> list[str]:
    """The lines of a text input; missing or unreadable is a MateError naming the file and `what` it is."""
    from scripts.errors import MateError

    path = Path(path)
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        raise MateError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MateError(f"{path}: cannot read {what} ({exc})") from None
