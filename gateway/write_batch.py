"""Small answers written together at the end of the event loop's turn, not one by one.

When a coalesced batch comes back from Triton, every request of it resumes in the same turn of
the loop, and each wrote its answer as soon as it was encoded: one send between each encoding.
On loopback (a sidecar proxy, a local client, the benchmark's load generator) each send wakes the
reader, so a batch of n answers woke it up to n times, and on a VM a wake-up across CPUs is
costly (``bench/exchange.py``: 45 us of CPU a side against 10 on one CPU on one VM measured).
Held until the turn's callbacks have run, the answers go out back to back: the reader wakes once
for all of them, and the gateway's Python runs without a system call between each answer.
Netty's FlushConsolidationHandler makes the same trade for the same reason.

When the flush runs matters. Queued by the first answer held, it ran a turn later: asyncio and
uvloop run what a turn queues only after polling for I/O again, so the requests read meanwhile
were parsed and dispatched before the batch's answers left. The coalescer queues it instead
(``arm``) as it answers a batch, after the callers it wakes: the answers leave as soon as the
last of them is encoded (bench.ab, REST at 64 clients, 10 rounds: 17210 -> 20059 req/s, p99
7.2 -> 6.2 ms; at 16 clients 11387 -> 11827).

One batch per event loop (``of``): the coalescer arms the one the doors' connections hold in.
Both doors hold their small answers. For gRPC the trade depended on the VM (bench.ab, gRPC, 16
and 64 clients): held but not armed, 5615 -> 4973 req/s at 16 clients on one; armed, 8943 ->
8704 at 16 and 11660 -> 12384 at 64 on another, whose loopback exchange across CPUs cost 22 us a
side; armed, on one where it cost 36 us, 5519 -> 6237 and 7306 -> 7813 (CPU per request 0.85x and
0.91x), then 4122 -> 4660 and 5139 -> 6047 (0.88x, 0.82x).

A connection holds its bytes (``HoldsAnswers.hold``) and writes them in ``flush``; anything else
it writes meanwhile (a 100 Continue, a large answer, control frames, a close) flushes first, so
its bytes keep their order.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol


class Flushes(Protocol):
    def flush(self) -> None: ...


class WriteBatch:
    """The connections with answers held this turn; one callback writes them all."""

    __slots__ = ("_loop", "_held", "_queued", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: ``of`` keys its batches weakly by loop, and a value holding its key strongly
        # would keep every loop (a test's, a worker thread's) alive for good.
        self._loop = weakref.ref(loop)
        self._held: list[Flushes] = []
        self._queued = False  # the flush is queued on the loop

    def arm(self) -> None:
        """Queue the flush now (the coalescer, having woken a batch's callers: it runs after
        them, so what they hold goes out before the loop polls again)."""
        loop = self._loop()
        if not self._queued and loop is not None:
            self._queued = True
            loop.call_soon(self._flush)

    def hold(self, connection: Flushes) -> None:
        """``connection`` holds bytes (the first of this turn: call once until flushed)."""
        self._held.append(connection)
        self.arm()  # (queued already when the coalescer armed it)

    def _flush(self) -> None:
        self._queued = False
        held, self._held = self._held, []
        for connection in held:
            connection.flush()


class HoldsAnswers:
    """A connection's side of the batch, shared by both doors' connections: the bytes it holds
    this turn, joined into one write when the batch flushes it."""

    held: list[bytes] | None = None  # answers to write at the turn's end
    batch: WriteBatch  # the loop's (``of``)

    def write_held(self, data: bytes) -> None:
        """Write ``data`` unless the connection is closed (each door knows its transport)."""
        raise NotImplementedError

    def hold(self, data: bytes) -> None:
        """An answer written with the others of this turn."""
        held = self.held
        if held is not None:
            held.append(data)
        else:
            self.held = [data]
            self.batch.hold(self)

    def flush(self) -> None:
        """Write what is held."""
        held, self.held = self.held, None
        if held:
            self.write_held(held[0] if len(held) == 1 else b"".join(held))


_BATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteBatch] = (
    weakref.WeakKeyDictionary()
)


def of(loop: asyncio.AbstractEventLoop) -> WriteBatch:
    """The batch of ``loop``: shared by the doors' connections and the coalescer."""
    batch = _BATCHES.get(loop)
    if batch is None:
        batch = _BATCHES[loop] = WriteBatch(loop)
    return batch
