"""Atomic writes: every output goes to a temp file in the same folder, then is renamed into place.

A crash or a Ctrl-C mid-write therefore never leaves a half-written file, and a file that was already
there is only replaced by a complete new one; the file and its folder are fsynced around the rename,
so this holds for a machine crash too. Files get the mode a plain open() would give them (0666 less
the umask: 0644 under the usual 022), not mkstemp's private 0600. A write the OS refuses (a full
disk above all) is one MateError line naming the file; nothing already there is touched.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

if TYPE_CHECKING:
    from scripts.core.errors import MateError


TEMP_MARK = ".tmp"  # temp files are `.<name>.<random>.tmp<suffix>` beside their target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it is flushed to disk (fsync) and renamed onto
    `path`, and the folder is synced so the rename survives a machine crash; on failure it is removed.
    An OS error while writing (a full disk, a read-only or vanished folder) is a MateError naming the
    file and the cause; the previous `path`, if any, is left as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_MARK + path.suffix, dir=path.parent)
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs are as readable as open() makes them
        os.close(fd)
    except OSError as exc:
        raise write_fault(path, exc) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not _disk_full(path):
            raise  # torch reports a failed write as RuntimeError; anything else is a bug, not the disk
        raise write_fault(path, exc) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):  # folders on some file systems cannot be synced
            raise
    finally:
        os.close(fd)


def _disk_full(path: Path, margin: int = 1 << 20) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < margin
    except OSError:
        return False


def write_fault(path: Path, exc: BaseException) -> "MateError":
    """One line for a failed write: a full disk says so and names the device's folder."""
    from scripts.core.errors import MateError

    if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or _disk_full(path):
        return MateError(f"{path}: no space left on the device that holds {path.parent} (free some space or "
                         f"write elsewhere; files already there are unchanged)")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip().splitlines()[0]
    blocker = file_in_the_way(path)
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    return MateError(f"{path}: cannot write ({reason}); files already there are unchanged")


def file_in_the_way(path: Path) -> Path | None:
    """The nearest existing parent of `path` when it is a file (where a folder must be), else None."""
    for parent in Path(path).parents:
        if parent.exists():
            return parent if not parent.is_dir() else None
    return None


def remove_stale_temps(folder: str | os.PathLike, names: Iterable[str] | None = None) -> list[Path]:
    """Delete temp files that killed writers left in `folder` (of the targets `names`, or all). Call it
    only while holding the folder's lock (scripts/core/locks.py): then no live writer owns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if names is None else set(names)
    removed = []
    for tmp in folder.glob(f".*{TEMP_MARK}*"):
        target = tmp.name[1:tmp.name.rindex(TEMP_MARK)].rsplit(".", 1)[0]  # strip ".<random>.tmp<suffix>"
        if tmp.is_file() and (wanted is None or target in wanted):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


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


def read_text(path: str | os.PathLike, what: str) -> str:
    """A text input (manifest, list, config, annotation) as UTF-8, a byte-order mark dropped (editors on
    Windows write one); missing, a folder, unreadable or binary is one MateError naming the file and `what`."""
    from scripts.core.errors import MateError

    path = Path(path)  # a pipe is read as it comes (main.py --train_list <(grep ...)): no regular-file check
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MateError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise MateError(f"{path}: is a folder, not a {what}") from None
    except UnicodeDecodeError as exc:
        raise MateError(f"{path}: {what} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                        f"{exc.start}); a binary file?") from None
    except OSError as exc:
        raise MateError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


NPY_MAGIC = b"\x93NUMPY"


def not_a_regular_file(path: str | os.PathLike) -> str | None:
    """What a path that exists is when it is no regular file (a folder, a FIFO, a device: opening a FIFO
    would wait for a writer forever), else None."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing or unreadable: the open says so
    if stat.S_ISREG(mode):
        return None
    return "a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode) else "not a regular file"


def npy_header_fault(path: str | os.PathLike) -> str | None:
    """Why a file named .npy is not one, from its first bytes (None: it starts like one): empty, an .npz
    archive, anything else (text); so that it is named for what it is, not misread as pickled data."""
    other = not_a_regular_file(path)
    if other is not None:
        return f"{other}, not a .npy file"
    with open(path, "rb") as f:
        head = f.read(len(NPY_MAGIC))
    if head == NPY_MAGIC:
        return None
    if not head:
        return "empty file (0 bytes), not a .npy array"
    what = "a zip (.npz) archive" if head.startswith(b"PK") else f"it starts with {head!r}"
    return f"not a .npy array (no .npy header: {what})"


def read_lines(path: str | os.PathLike, what: str) -> list[str]:
    """The lines of a text input (read_text)."""
    return read_text(path, what).splitlines()
