"""The REST door's request deadlines (``--rest_api_timeout_in_ms``) on one timer.

Every REST request gets the same timeout, so deadlines expire in the order requests began: a FIFO
queue and one timer armed for its oldest open entry do what ``asyncio.timeout`` did with a timer
handle pushed on the loop's heap and cancelled again per request (about 10 % of the REST path's
CPU in process, measured). Expiry works as ``asyncio.timeout``'s does: the request's task is
cancelled and the cancellation turned into DEADLINE_EXCEEDED where the deadline was taken, with
``Task.uncancel`` so a cancellation from elsewhere (the client gone, shutdown) still propagates.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import TypeVar

from gateway.loops import BoundLoop
from tfsgate.core.status import Code, ServingError

T = TypeVar("T")


class _Entry:
    __slots__ = ("when", "task", "done", "expired")

    def __init__(self, when: float, task: asyncio.Task[object]) -> None:
        self.when = when
        self.task = task
        self.done = False
        self.expired = False


class Deadlines:
    """``within(awaitable)``: its result, or DEADLINE_EXCEEDED ``seconds`` after the call."""

    def __init__(self, seconds: float, message: str = "Request timed out") -> None:
        self.seconds = seconds
        self.message = message
        self._queue: deque[_Entry] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop = BoundLoop()
        self._open = 0

    def __len__(self) -> int:
        """Entries still queued (open, or finished and not yet passed by the timer)."""
        return len(self._queue)

    async def within(self, awaitable: Awaitable[T]) -> T:
        loop = self._loop.get()
        task = asyncio.current_task(loop)
        assert task is not None
        entry = _Entry(loop.time() + self.seconds, task)
        self._queue.append(entry)
        self._open += 1
        if self._timer is None:
            self._timer = loop.call_at(entry.when, self._expire)
        try:
            result = await awaitable
        except asyncio.CancelledError:
            if entry.expired and task.uncancel() == 0:
                raise ServingError(Code.DEADLINE_EXCEEDED, self.message) from None
            raise
        finally:
            entry.done = True  # no await since the call ended: the timer cannot have run
            self._finished()
        if entry.expired:  # the call swallowed its cancellation and answered: keep the answer
            task.uncancel()
        return result

    def _finished(self) -> None:
        """Drop finished entries at the front; when one slow call holds many finished ones
        behind it, compact (as the loop's heap drops cancelled timers once they are half)."""
        self._open -= 1
        queue = self._queue
        while queue and queue[0].done:
            queue.popleft()
        if len(queue) > 2 * self._open + 64:
            self._queue = deque(e for e in queue if not e.done)

    def _expire(self) -> None:
        """Pass finished entries, cancel those past their deadline, re-arm for the next open."""
        self._timer = None
        loop, queue = self._loop.get(), self._queue
        now = loop.time()
        while queue:
            head = queue[0]
            if head.done:
                queue.popleft()
            elif head.when > now:
                self._timer = loop.call_at(head.when, self._expire)
                return
            else:
                queue.popleft()
                head.expired = True
                head.task.cancel()
