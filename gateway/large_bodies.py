"""A bound on how many large request bodies the REST door holds at once.

A REST tensor costs several times its size while it is read: 1 MB of float32 is 5.3 MB of JSON,
and decoding it takes simdjson's buffers, the arrays, Triton's buffers and the JSON answer (31 MB
above idle for one such request, 60 MB for four at once, measured in docs/performance.md). Without
a bound, a gateway's memory grows with the number of clients sending large tensors together.

A request whose body passes ``threshold`` bytes takes one of ``limit`` places as it does. While
none is free, its connection stops reading: the rest of the body waits in the socket buffers and
the client (TCP back-pressure), and the connection waits in line. The place is given back once the
connection has answered it (or closes), and the first connection in line reads on. Small bodies
never wait. A client that closes while in line is seen to when its turn comes (its reading is
paused until then), and passes the place on at once. A client that takes a place and then stops
sending while others wait is cut off after ``stall`` seconds (``HttpServer``'s sweep), so one slow
upload cannot hold every place.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Protocol

THRESHOLD = 1 << 20  # bytes: below this a body is read whatever else is in flight
LIMIT = 2  # large bodies at once: one decoding while the other waits on Triton
STALL = 30.0  # seconds without a byte of a large body, while others wait, before it is cut off


class Waiter(Protocol):
    def admitted(self) -> None:
        """Its place is free: read on."""


class LargeBodies:
    def __init__(self, limit: int = LIMIT, threshold: int = THRESHOLD, stall: float = STALL):
        if limit < 1:
            raise ValueError(f"large bodies at once must be at least 1, not {limit}")
        self.limit = limit
        self.threshold = threshold
        self.stall = stall
        self.held = 0
        self._line: deque[Waiter] = deque()

    @property
    def waiting(self) -> int:
        return len(self._line)

    def claim(self, waiter: Waiter) -> bool:
        """A place now (True), or ``waiter`` in line to be ``admitted()`` later (False)."""
        if self.held < self.limit:
            self.held += 1
            return True
        self._line.append(waiter)
        return False

    def give_back(self) -> None:
        """A place is free: the first in line gets it."""
        if self._line:
            self._line.popleft().admitted()  # the place passes on; held stays
        else:
            self.held -= 1

    def withdraw(self, waiter: Waiter) -> None:
        """``waiter`` leaves the line (its connection closed) without a place."""
        with contextlib.suppress(ValueError):  # admitted already, or never in line
            self._line.remove(waiter)
