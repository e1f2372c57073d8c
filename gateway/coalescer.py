"""Coalesce concurrent requests for one Triton model version into one Triton call.

A Python hop costs CPU per request; on a 2-core host a bare forwarder reached a third of Triton's
own throughput (measured: bench/throughput.py). So per (Triton model, version, input names: the
signatures of a shared Triton model have their own, see tfsgate/core/naming.py) there is a lane:
when a call is in flight, requests that arrive wait, and all of them (up to ``max_rows`` rows) go
together in the next call as soon as it returns. There is no timer, so a lone request never waits.
A lane may keep a second call in flight, so that Triton works on the next batch while the gateway
answers the last, when its requests measurably come back sooner that way (gateway/call_depth.py).
Answers are split back by each request's rows; a failed batch is retried request by request, so an
error reaches only the request that caused it; each request keeps its own deadline.

A lone request's call is made straight from its caller (no task: the 1-client path). When its
caller gives up (a deadline, a client gone) Triton still runs the call to its end, so the lane
stays occupied until the upstream says Triton is done with it (``Hold``, gateway/types.py): the
requests that arrive meanwhile wait in the lane, where those whose deadlines pass expire without
reaching Triton, rather than each going to Triton beside the call it still runs. Under a flood of
deadlines shorter than Triton's latency that is what keeps Triton working on requests that can
still be answered.

A request larger than ``max_rows`` goes alone, as one call: Triton's own max_batch_size is 2**31-1
(control_plane/converter/batching.py) and the runner bounds the rows of each engine call, so a
3,000,000-row request costs one Triton call, not 23,438 (TF Serving runs it as one batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from gateway import write_batch
from gateway.call_depth import CallDepth
from gateway.loops import BoundLoop
from gateway.types import Tensors
from gateway.upstream import TritonInferenceClient
from tfsgate.core.status import Code, ServingError

_Key = tuple[str, int, tuple[str, ...]]  # (Triton model, version, input names)
# A lane held for a call given up is let go after this even if the upstream never says the call
# ended (a Triton that never answers it): as long as the HTTP upstream waits for such an answer.
HOLD_SECONDS = 60.0


@dataclass
class _Pending:
    inputs: Tensors
    outputs: list[str]
    rows: int
    future: asyncio.Future[Tensors]


class _Lane:
    """The requests of one key: its calls in flight and those waiting. Also the ``Hold`` of its
    lone call: ``keep`` leaves that call counted in flight after its caller gave up, until
    ``release`` (or HOLD_SECONDS)."""

    __slots__ = ("depth", "calls", "queue", "kept", "_done", "_backstop")

    def __init__(self, depth: CallDepth, done: Callable[[_Lane], None]) -> None:
        self.depth = depth
        self.calls = 0  # Triton calls in flight
        self.queue: deque[_Pending] = deque()
        self.kept = False  # the lone call given up is still running in Triton
        self._done = done
        self._backstop: asyncio.TimerHandle | None = None

    def keep(self) -> None:
        self.kept = True
        self._backstop = asyncio.get_running_loop().call_later(HOLD_SECONDS, self.release)

    def release(self) -> None:
        if not self.kept:  # released already (the backstop, then the upstream)
            return
        self.kept = False
        if self._backstop is not None:
            self._backstop.cancel()
            self._backstop = None
        self._done(self)


def _rows(inputs: Tensors) -> int:
    return int(next(iter(inputs.values())).shape[0]) if inputs else 0


def _stackable(first: Tensors, other: Tensors) -> bool:
    """Same input names, dtypes and non-batch dimensions: concatenation along axis 0 works."""
    return first.keys() == other.keys() and all(
        first[k].dtype == other[k].dtype and first[k].shape[1:] == other[k].shape[1:] for k in first
    )


class Coalescer:
    def __init__(
        self,
        upstream: TritonInferenceClient,
        max_rows: int,
        new_depth: Callable[[], CallDepth] = CallDepth,
    ) -> None:
        self.upstream = upstream
        self.max_rows = max_rows
        self.new_depth = new_depth  # a lane's CallDepth
        self._lanes: dict[_Key, _Lane] = {}
        self._loop = BoundLoop()

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: float | None = None,
    ) -> Tensors:
        """Like ``TritonInferenceClient.infer`` for a batching model (axis 0 is the batch)."""
        key = (model, version, tuple(inputs))
        lane = self._lanes.get(key)
        if lane is None:  # (setdefault would build a lane per call)
            lane = self._lanes[key] = _Lane(self.new_depth(), partial(self._done, key))
        rows = _rows(inputs)
        if rows > self.max_rows or rows == 0:
            return await self.upstream.infer(model, version, inputs, outputs, timeout)
        began = time.perf_counter()  # each request's time feeds the lane's depth
        if not lane.calls:
            lane.calls = 1
            try:
                return await self.upstream.infer(model, version, inputs, outputs, timeout, lane)
            finally:
                lane.depth.record(began, time.perf_counter())
                if not lane.kept:  # else the lane's release ends the call
                    self._done(key, lane)
        future: asyncio.Future[Tensors] = self._loop.get().create_future()
        lane.queue.append(_Pending(inputs, outputs, rows, future))
        if lane.calls < lane.depth.calls:
            self._start(key, lane)
        # The future itself is awaited (no wait_for task, no shield): a deadline or a caller's
        # cancellation cancels it, and a cancelled future is skipped by ``_take`` and never
        # answered by ``_run_batch``.
        try:
            if timeout is None:  # the caller's own deadline covers the wait
                return await future
            try:
                async with asyncio.timeout(timeout):
                    return await future
            except TimeoutError:
                raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline exceeded") from None
        finally:
            lane.depth.record(began, time.perf_counter())

    def _done(self, key: _Key, lane: _Lane) -> None:
        """A call returned: the next starts with whatever queued meanwhile."""
        lane.calls -= 1
        if lane.calls < lane.depth.calls:
            self._start(key, lane)

    def _start(self, key: _Key, lane: _Lane) -> None:
        batch = self._take(lane)
        if batch:
            lane.calls += 1
            self._loop.get().create_task(self._run(key, lane, batch))

    def _take(self, lane: _Lane) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        while lane.queue:
            pending = lane.queue[0]
            if pending.future.done():  # its caller gave up (deadline, cancellation)
                lane.queue.popleft()
                continue
            if batch and (
                rows + pending.rows > self.max_rows
                or not _stackable(batch[0].inputs, pending.inputs)
            ):
                break
            batch.append(lane.queue.popleft())
            rows += pending.rows
        return batch

    async def _run(self, key: _Key, lane: _Lane, batch: list[_Pending]) -> None:
        try:
            await self._run_batch(key, batch)
        except Exception as exc:  # noqa: BLE001 - every waiting caller gets an answer
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(ServingError(Code.INTERNAL, str(exc)))
        finally:
            # The batch's callers wake next turn, each holding its answer: queued after them, the
            # write batch's flush sends those answers before the loop polls again (queued by the
            # first hold, it would run only after that poll and whatever it reads).
            write_batch.of(self._loop.get()).arm()
            # In the step that answered the batch: the next call is counted before its callers
            # wake (its task runs after them, as when this was the task's done callback).
            self._done(key, lane)

    async def _run_batch(self, key: _Key, batch: list[_Pending]) -> None:
        model, version, _ = key
        if len(batch) == 1:
            await self._single(model, version, batch[0])
            return
        wanted = set()
        for pending in batch:
            wanted.update(pending.outputs)
        everything = any(not p.outputs for p in batch)
        stacked = {k: np.concatenate([p.inputs[k] for p in batch]) for k in batch[0].inputs}
        try:
            result = await self.upstream.infer(
                model, version, stacked, [] if everything else sorted(wanted)
            )
        except ServingError:
            # One bad request must not fail its neighbours: ask again one by one.
            await asyncio.gather(*(self._single(model, version, p) for p in batch))
            return
        total = sum(p.rows for p in batch)
        if any(a.ndim == 0 or a.shape[0] != total for a in result.values()):
            await asyncio.gather(*(self._single(model, version, p) for p in batch))
            return
        start = 0
        for pending in batch:
            end = start + pending.rows
            names = pending.outputs or list(result)
            answer = {k: result[k][start:end] for k in names}
            if not pending.future.done():
                pending.future.set_result(answer)
            start = end

    async def _single(self, model: str, version: int, pending: _Pending) -> None:
        try:
            answer = await self.upstream.infer(model, version, pending.inputs, pending.outputs)
        except ServingError as exc:
            if not pending.future.done():
                pending.future.set_exception(exc)
            return
        with contextlib.suppress(asyncio.InvalidStateError):
            pending.future.set_result(answer)
