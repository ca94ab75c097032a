"""A long-running server's heap: fewer glibc malloc arenas, and free pages handed back."""

from __future__ import annotations

import functools
import gc
import sys
import time


@functools.cache
def _libc():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name and sys.platform.startswith("linux") else None


def tune_malloc(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas (no-op elsewhere): glibc gives threads arenas of their own, up
    to 8 per core, where freed buffers stay mapped; a threaded server's memory then creeps up
    under concurrent load (measured with scripts/soak.py). Same as MALLOC_ARENA_MAX."""
    libc = _libc()
    if libc is not None:
        M_ARENA_MAX = -8
        libc.mallopt(M_ARENA_MAX, arenas)


class MemoryReleaser:
    """Collects reference cycles and hands the heap's free pages back to the system (glibc's
    malloc_trim), at most once per ``interval`` seconds however often it is asked."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.last = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        gc.collect()
        libc = _libc()
        if libc is not None:
            libc.malloc_trim(0)
