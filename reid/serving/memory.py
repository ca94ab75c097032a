"""A long-running server's memory: fewer glibc malloc arenas, free pages handed back, and budgets
that requests reserve from."""

from __future__ import annotations

import asyncio
import collections
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
        """Collect and trim, unless that was done less than ``interval`` seconds ago."""
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        gc.collect()
        libc = _libc()
        if libc is not None:
            libc.malloc_trim(0)


class ByteBudget:
    """An amount of memory shared by the requests in flight: each reserves what it will hold,
    waits (first come, first served) while the rest is taken, and gives it back when done."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def reserve(self, amount: int) -> None:
        """Wait until ``amount`` bytes are free, then take them. ValueError for more than the
        whole budget: it could never fit."""
        if amount > self.total:
            raise ValueError(f"{amount} bytes is over the whole budget of {self.total}")
        if not self._waiters and self.try_reserve(amount):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((amount, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(amount)  # granted just as the wait was given up
            else:
                self._waiters.remove((amount, waiter))
                self._grant()
            raise

    def try_reserve(self, amount: int) -> bool:
        """Take ``amount`` bytes if they are free now; False otherwise."""
        if amount > self.free:
            return False
        self.free -= amount
        return True

    def release(self, amount: int) -> None:
        """Give ``amount`` bytes back and let waiting reservations in, first come first served."""
        self.free += amount
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.free:
            amount, waiter = self._waiters.popleft()
            if not waiter.done():
                self.free -= amount
                waiter.set_result(None)
