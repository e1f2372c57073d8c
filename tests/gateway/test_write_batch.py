"""gateway/write_batch.py: what is held in one turn of the loop is flushed once, after it."""

from __future__ import annotations

import asyncio

from gateway.write_batch import WriteBatch


class Connection:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def flush(self) -> None:
        self.log.append(f"flush {self.name}")


async def test_connections_held_in_one_turn_are_flushed_once_after_it() -> None:
    loop = asyncio.get_running_loop()
    batch = WriteBatch()
    log: list[str] = []
    a, b = Connection("a", log), Connection("b", log)
    # Callbacks queued before the first hold (as a batch's answered requests are, all woken at
    # once) run before the flush it schedules: what they hold is flushed with it.
    loop.call_soon(log.append, "queued 1")
    loop.call_soon(batch.hold, b, loop)
    batch.hold(a, loop)
    assert log == []
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log == ["queued 1", "flush a", "flush b"]
    # The next turn's holds get a flush of their own.
    batch.hold(b, loop)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log[3:] == ["flush b"]
