"""gateway/write_batch.py: what is held in one turn of the loop is flushed once, after it; armed
by the coalescer, before the loop polls again."""

from __future__ import annotations

import asyncio
import gc
import weakref

from gateway import write_batch
from gateway.write_batch import WriteBatch


class Connection:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def flush(self) -> None:
        self.log.append(f"flush {self.name}")


async def test_connections_held_in_one_turn_are_flushed_once_after_it() -> None:
    loop = asyncio.get_running_loop()
    batch = WriteBatch(loop)
    log: list[str] = []
    a, b = Connection("a", log), Connection("b", log)
    # Callbacks queued before the first hold (as a batch's answered requests are, all woken at
    # once) run before the flush it schedules: what they hold is flushed with it.
    loop.call_soon(log.append, "queued 1")
    loop.call_soon(batch.hold, b)
    batch.hold(a)
    assert log == []
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log == ["queued 1", "flush a", "flush b"]
    # The next turn's holds get a flush of their own.
    batch.hold(b)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log[3:] == ["flush b"]


class Ticking:
    """Logs "tick" once per turn of the loop (it queues itself again each time it runs)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, log: list[str]) -> None:
        self.loop = loop
        self.log = log
        self.handle = loop.call_soon(self.tick)

    def tick(self) -> None:
        self.log.append("tick")
        self.handle = self.loop.call_soon(self.tick)


async def test_an_armed_flush_runs_in_the_turn_of_the_callbacks_queued_before_it() -> None:
    """The coalescer arms the batch after waking a batch's callers: their holds are flushed in
    the same turn as they run, not a turn later (after the loop has polled and run what it read),
    as when the first hold queues the flush."""
    loop = asyncio.get_running_loop()
    log: list[str] = []
    for armed in (True, False):
        batch = WriteBatch(loop)
        a, b = Connection("a", log), Connection("b", log)
        await asyncio.sleep(0)
        loop.call_soon(batch.hold, a)  # the batch's callers, woken together
        loop.call_soon(batch.hold, b)
        if armed:
            batch.arm()
        ticking = Ticking(loop, log)
        for _ in range(4):
            await asyncio.sleep(0)
        ticking.handle.cancel()
        first = log.index("flush a")
        assert log[first + 1] == "flush b"
        if armed:  # no turn between the holds and the flush
            assert "tick" not in log[:first]
        else:
            assert log[:first].count("tick") == 1
        log.clear()


async def test_each_loop_has_one_batch_that_does_not_keep_it_alive() -> None:
    loop = asyncio.get_running_loop()
    assert write_batch.of(loop) is write_batch.of(loop)
    other = asyncio.new_event_loop()
    assert write_batch.of(other) is not write_batch.of(loop)
    gone = weakref.ref(other)
    other.close()
    del other
    gc.collect()
    assert gone() is None


class Holding(write_batch.HoldsAnswers):
    def __init__(self, batch: WriteBatch) -> None:
        self.batch = batch
        self.writes: list[bytes] = []

    def write_held(self, data: bytes) -> None:
        self.writes.append(data)


async def test_a_connection_registers_once_a_turn_and_writes_its_answers_in_one_write() -> None:
    """Both doors' connections hold through HoldsAnswers: the first answer of a turn registers
    the connection with the batch, the rest join it, and the flush writes them as one."""
    loop = asyncio.get_running_loop()
    counted: list[int] = []

    class Counting(WriteBatch):
        def _flush(self) -> None:
            counted.append(len(self._held))
            super()._flush()

    connection = Holding(Counting(loop))
    for answer in (b"one ", b"two ", b"three"):
        connection.hold(answer)
    assert connection.writes == []
    await asyncio.sleep(0)
    assert (connection.writes, counted) == ([b"one two three"], [1])
    connection.flush()  # nothing held: nothing written
    connection.hold(b"alone")  # a single answer goes as it is, in the next turn's flush
    await asyncio.sleep(0)
    assert (connection.writes[1:], counted) == ([b"alone"], [1, 1])
