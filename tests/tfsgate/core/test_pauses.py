"""The background loops' pause (tfsgate/core/pauses.py)."""

from __future__ import annotations

import asyncio

import pytest

from tfsgate.core.pauses import pause


async def test_a_pause_lasts_its_time_when_nothing_stops() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await pause(asyncio.Event(), 0.05) is False
    assert loop.time() - started >= 0.05


async def test_a_pause_ends_when_stopping_is_set() -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.call_later(0.02, stopping.set)
    started = loop.time()
    assert await pause(stopping, 60) is True
    assert loop.time() - started < 30


async def test_no_pause_once_stopped() -> None:
    stopping = asyncio.Event()
    stopping.set()
    assert await pause(stopping, 60) is True


async def test_a_cancelled_pause_is_cancelled_not_timed_out() -> None:
    """A loop's task cancelled mid-pause (shutdown) ends with CancelledError, as wait_for did."""
    task = asyncio.ensure_future(pause(asyncio.Event(), 60))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
