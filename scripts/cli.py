"""The CLI boundary: user faults become one line on stderr and a non-zero exit."""
from __future__ import annotations

import ctypes
import sys
from typing import Callable, Sequence

from scripts.errors import MateError

EXIT_USER_ERROR = 2


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run a script's `main(argv)`; a MateError prints `error: <message>` and exits with code 2."""
    keep_freed_memory()
    try:
        code = main(argv)
    except MateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)


def keep_freed_memory() -> None:
    """Let glibc keep freed blocks up to 32 MB for reuse instead of returning them to the system.

    A training step allocates batch-sized tensors (20 MB for 16 UCF-Crime maps) and frees them again;
    by default glibc maps every such block freshly from the kernel, which zero-fills it page by page,
    and that costs about a tenth of an epoch of the fast model on CPU (docs/speed.md). With the
    blocks kept, the next step reuses the same pages. Freed memory then stays with the process until
    it exits. Where glibc is not the C library this does nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # the largest threshold glibc accepts on 64-bit
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass
