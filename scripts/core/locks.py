"""One job per output: an exclusive lock on a run folder or an extraction folder.

    with exclusive_lock(run_dir / LOCK_NAME, what=f"run folder {run_dir}"):
        ...  # load features, train, write checkpoints

The lock is the kernel's `flock` on a small file, so it is released when its process ends, however it
ends (a `kill -9` or a crash included): a lock file left behind by a dead job is simply taken over. The
file records the holder (pid, host, start time) so a second job's refusal names it. `flock` works on
local file systems and on NFS v4; on a file system without it the lock is a no-op with a warning.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from scripts.core.errors import MateError
from scripts.core.fileio import current_umask, file_in_the_way

LOCK_NAME = ".mate.lock"  # inside the folder it guards


def holder_text() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"


@contextlib.contextmanager
def exclusive_lock(lock_path: str | os.PathLike, *, what: str) -> Iterator[Path]:
    """Hold `lock_path` exclusively for the `with` block; a second holder is refused in one line.

    Args:
        lock_path (path): the lock file (created with its folder if missing; never deleted).
        what (str): what the lock guards, for the refusal, e.g. "run folder runs/fast_fold0".
    """
    lock_path = Path(lock_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
    except OSError as exc:
        blocker = file_in_the_way(lock_path)
        reason = f"{blocker} is a file, not a folder" if blocker is not None else exc.strerror
        raise MateError(f"{lock_path}: cannot create the lock of the {what} ({reason})") from None
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another job"
                raise MateError(f"{what} is in use by {holder} (lock {lock_path}); wait for that job, or "
                                "give this one another name") from None
            print(f"warning: {lock_path}: file locks are not supported here ({exc.strerror}); "
                  f"nothing stops a second job on the {what}", file=sys.stderr)
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder_text() + "\n").encode(), 0)
        yield lock_path
    finally:
        if held:  # a refused job must not erase the holder's record
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # an empty lock file: nobody holds it
        os.close(fd)  # closing releases the flock
