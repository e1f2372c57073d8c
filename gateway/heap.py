"""Give the C heap's free pages back to the system after large requests.

glibc serves a block from its heap unless it is above the mmap threshold, and that threshold
rises to the size of any mmapped block freed (up to 32 MB on 64-bit): after a few requests with
megabyte bodies, later ones come from the heap, and a heap with one live block near its top
cannot shrink. The process keeps its peak: 181 MB after 8 s of 1 MB tensors then 8 s of 256 KB
over REST, 141 MB with a trim. ``malloc_trim(0)`` hands every free page of every arena back
(``MADV_DONTNEED`` inside the heap too). Fixing the threshold instead (``mallopt``) keeps RSS
low but doubled the gateway's CPU on 1 MB tensors (every large body mmapped and faulted in anew).

A request that moved at least ``LARGE_BYTES`` of tensors schedules one trim ``DELAY`` seconds
later; requests meanwhile join it, so the last large request is always followed by one.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

LARGE_BYTES = 64 << 10  # tensor bytes; their JSON is 2-10 times that
DELAY = 0.5


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (another C library)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class HeapTrimmer:
    def __init__(self, trim: Callable[[int], int] | None = None) -> None:
        self._trim = trim if trim is not None else _malloc_trim()
        self._pending: asyncio.TimerHandle | None = None
        self._before: list[Callable[[], bool]] = []
        self.trims = 0

    def before_trim(self, release: Callable[[], bool]) -> None:
        """``release`` runs before each trim to let go of what a large request left sized for
        itself; it answers True while large requests keep coming (let go later: another trim is
        scheduled)."""
        self._before.append(release)

    def moved(self, nbytes: int) -> None:
        """A request moved ``nbytes`` of tensors (in and out); call on the event loop."""
        if nbytes < LARGE_BYTES or self._trim is None or self._pending is not None:
            return
        self._pending = asyncio.get_running_loop().call_later(DELAY, self._run)

    def _run(self) -> None:
        self._pending = None
        again = False
        for release in self._before:
            again = release() or again
        if self._trim is not None:
            self._trim(0)
            self.trims += 1
        if again:
            self._pending = asyncio.get_running_loop().call_later(DELAY, self._run)


TRIMMER = HeapTrimmer()  # one heap per process
