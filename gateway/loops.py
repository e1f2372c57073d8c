"""The event loop an object serves on, remembered.

``asyncio.get_running_loop()`` (and what calls it: ``asyncio.current_task()``,
``asyncio.ensure_future()``) makes a ``getpid()`` system call each time on Python 3.11, to tell
a forked child from its parent: three per REST request under load (``strace -c``), each a point
where the kernel may switch the process out on a busy 2-core host.
"""

from __future__ import annotations

import asyncio


class BoundLoop:
    """The running loop, asked of asyncio once; again only when that loop no longer runs (an
    object outliving one loop, as in tests)."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return loop
