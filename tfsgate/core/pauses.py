"""The background loops' pause: a sleep that ends early when the process stops."""

from __future__ import annotations

import asyncio
import contextlib


async def pause(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, less when ``stopping`` is set meanwhile; True when it is set.

    ``asyncio.timeout`` around the event's wait, not ``asyncio.wait_for``: on Python 3.11
    wait_for wraps the wait in a new task each call, and the loops of an idle ``tfsgate serve``
    pause several times a second.
    """
    if stopping.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopping.wait()
    return stopping.is_set()
