"""gateway/loops.py: the loop an object serves on, asked of asyncio once per loop."""

from __future__ import annotations

import asyncio

from gateway.loops import BoundLoop


def test_bound_to_the_running_loop_and_again_to_the_next() -> None:
    bound = BoundLoop()

    async def twice() -> asyncio.AbstractEventLoop:
        first = bound.get()
        assert first is asyncio.get_running_loop()
        assert bound.get() is first
        return first

    one = asyncio.run(twice())
    two = asyncio.run(twice())  # a new loop: not the one that stopped
    assert one is not two
