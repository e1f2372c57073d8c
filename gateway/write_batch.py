"""Small answers written together at the end of the event loop's turn, not one by one.

When a coalesced batch comes back from Triton, every request of it resumes in the same turn of
the loop, and each wrote its answer as soon as it was encoded: one send between each encoding.
On loopback (a sidecar proxy, a local client, the benchmark's load generator) each send wakes the
reader, so a batch of n answers woke it up to n times, and on a VM a wake-up across CPUs is
costly (``bench/exchange.py``: 45 us of CPU a side against 10 on one CPU on the VM measured).
Held until the turn's callbacks have run, the answers go out back to back: the reader wakes once
for all of them, and the gateway's Python runs without a system call between each answer.
Netty's FlushConsolidationHandler makes the same trade for the same reason.

The REST door holds its answers; the gRPC door writes each at once: held, its answers at 16
clients came back later (bench.ab, 8 rounds: 5615 -> 4973 req/s, the CPU per request unchanged)
though at 64 clients they cost 17 % less CPU.

A connection holds its bytes here (``hold``) and writes them in ``flush``; anything else it writes
meanwhile (a 100 Continue, a large answer, a close) flushes first, so its bytes keep their order.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Flushes(Protocol):
    def flush(self) -> None: ...


class WriteBatch:
    """The connections with answers held this turn; one callback writes them all."""

    def __init__(self) -> None:
        self._held: list[Flushes] = []

    def hold(self, connection: Flushes, loop: asyncio.AbstractEventLoop) -> None:
        """``connection`` has bytes held (the first of this turn: call once until flushed)."""
        if not self._held:
            loop.call_soon(self._flush)
        self._held.append(connection)

    def _flush(self) -> None:
        held, self._held = self._held, []
        for connection in held:
            connection.flush()
