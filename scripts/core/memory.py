"""How the scripts' C allocator treats freed memory (glibc; elsewhere these do nothing).

A training step allocates batch-sized tensors (20 MB for 16 UCF-Crime maps) and frees them again. By
default glibc hands every such block back to the kernel and maps it afresh next time, and the kernel
zero-fills it page by page: measured on the development machine, a 16-video gather with one temporary
took 4.3 to 22 ms that way against a steady 4.5 ms with the blocks kept (docs/speed.md).
`keep_freed_memory` (called by scripts/core/cli.py for every script) keeps blocks up to 32 MB for reuse;
`release_freed_memory` returns what is free to the system, after a phase that freed a lot (loading
the features frees each file's buffer once it is in the cache).
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> None:
    """Blocks up to 32 MB (the largest threshold glibc accepts on 64-bit) come from the heap and stay
    there when freed, up to 1 GB at its top, so the next step reuses the same pages."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)


def release_freed_memory() -> None:
    """Return the heap's free memory to the system (malloc_trim)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
