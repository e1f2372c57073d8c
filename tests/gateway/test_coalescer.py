"""Coalescer unit tests over a recording stand-in for Triton (pure logic: fakes allowed here)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from gateway import coalescer as coalescer_module
from gateway import write_batch
from gateway.call_depth import CallDepth
from gateway.coalescer import Coalescer
from gateway.types import Tensors
from tests.gateway.test_write_batch import Connection, Ticking
from tfsgate.core.status import Code, ServingError


class RecordingUpstream:
    """Answers y = 2x, slowly; remembers the batch size of every call; fails on x < 0."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.calls: list[int] = []

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: Any = None,
        hold: Any = None,
    ) -> Tensors:
        self.calls.append(len(inputs["x"]))
        await asyncio.sleep(self.delay)
        if (inputs["x"] < 0).any():
            raise ServingError(Code.INVALID_ARGUMENT, "negative input")
        answer = {"y": inputs["x"] * 2, "z": inputs["x"] + 1}
        return {k: v for k, v in answer.items() if not outputs or k in outputs}


def request(*values: float) -> Tensors:
    return {"x": np.array([[v] for v in values], dtype=np.float32)}


async def test_lone_request_goes_straight_through() -> None:
    upstream = RecordingUpstream(delay=0)
    coalescer = Coalescer(upstream, max_rows=8)  # type: ignore[arg-type]
    answer = await coalescer.infer("m", 1, request(1.0), [])
    assert answer["y"].tolist() == [[2.0]]
    assert upstream.calls == [1]


async def test_requests_arriving_during_a_call_share_the_next_one() -> None:
    upstream = RecordingUpstream()
    coalescer = Coalescer(upstream, max_rows=64)  # type: ignore[arg-type]
    answers = await asyncio.gather(
        *(coalescer.infer("m", 1, request(float(i), float(i)), ["y"]) for i in range(10))
    )
    assert upstream.calls == [2, 18]  # the first alone, the nine that waited together
    for i, answer in enumerate(answers):
        assert list(answer) == ["y"]
        assert answer["y"].tolist() == [[2.0 * i], [2.0 * i]]


async def test_signatures_of_a_shared_triton_model_have_lanes_of_their_own() -> None:
    """Two signatures in one Triton model (tensors under their prefixes, tfsgate/core/naming.py)
    never wait behind each other's calls, and each one's waiting requests still share a call."""
    calls: list[tuple[str, ...]] = []

    class Upstream(RecordingUpstream):
        async def infer(
            self,
            model: str,
            version: int,
            inputs: Tensors,
            outputs: list[str],
            timeout: Any = None,
            hold: Any = None,
        ) -> Tensors:
            calls.append(tuple(inputs))
            await asyncio.sleep(self.delay)
            (name,) = inputs
            return {name.split("/")[0] + "/y": inputs[name] * 2}

    coalescer = Coalescer(Upstream(), max_rows=64)  # type: ignore[arg-type]
    a = [{"a/x": request(float(i))["x"]} for i in range(3)]
    b = [{"b/x": request(float(i))["x"]} for i in range(3)]
    answers = await asyncio.gather(*(coalescer.infer("m", 1, t, []) for t in a + b))
    assert calls == [("a/x",), ("b/x",), ("a/x",), ("b/x",)]  # both first calls at once
    assert [answer[f"{n}/y"].tolist() for answer, n in zip(answers, "aaabbb", strict=True)] == [
        [[0.0]],
        [[2.0]],
        [[4.0]],
    ] * 2


async def test_batches_respect_max_rows() -> None:
    upstream = RecordingUpstream()
    coalescer = Coalescer(upstream, max_rows=4)  # type: ignore[arg-type]
    await asyncio.gather(*(coalescer.infer("m", 1, request(1.0, 2.0), []) for _ in range(5)))
    assert upstream.calls == [2, 4, 4]


async def test_one_bad_request_fails_alone() -> None:
    upstream = RecordingUpstream()
    coalescer = Coalescer(upstream, max_rows=64)  # type: ignore[arg-type]
    results = await asyncio.gather(
        coalescer.infer("m", 1, request(1.0), []),
        coalescer.infer("m", 1, request(2.0), []),
        coalescer.infer("m", 1, request(-1.0), []),
        coalescer.infer("m", 1, request(3.0), []),
        return_exceptions=True,
    )
    assert results[1]["y"].tolist() == [[4.0]]  # type: ignore[index]
    assert results[3]["y"].tolist() == [[6.0]]  # type: ignore[index]
    assert isinstance(results[2], ServingError) and results[2].code == Code.INVALID_ARGUMENT


async def test_each_request_keeps_its_deadline() -> None:
    upstream = RecordingUpstream(delay=0.2)
    coalescer = Coalescer(upstream, max_rows=64)  # type: ignore[arg-type]
    first = asyncio.ensure_future(coalescer.infer("m", 1, request(1.0), []))
    await asyncio.sleep(0.01)
    with pytest.raises(ServingError) as caught:
        await coalescer.infer("m", 1, request(2.0), [], timeout=0.05)
    assert caught.value.code == Code.DEADLINE_EXCEEDED
    assert (await first)["y"].tolist() == [[2.0]]


async def test_lanes_are_per_model_version() -> None:
    upstream = RecordingUpstream()
    coalescer = Coalescer(upstream, max_rows=64)  # type: ignore[arg-type]
    await asyncio.gather(
        coalescer.infer("m", 1, request(1.0), []), coalescer.infer("m", 2, request(1.0), [])
    )
    assert upstream.calls == [1, 1]


async def test_requests_above_max_rows_go_alone_as_one_call() -> None:
    """Triton takes any rows per request; the runner bounds each engine call (issue 8)."""
    upstream = RecordingUpstream()
    coalescer = Coalescer(upstream, max_rows=4)  # type: ignore[arg-type]
    values = [float(i) for i in range(10)]
    big = asyncio.ensure_future(coalescer.infer("m", 1, request(*values), ["y"]))
    small = asyncio.ensure_future(coalescer.infer("m", 1, request(1.0), ["y"]))
    answer, _ = await asyncio.gather(big, small)
    assert answer["y"].ravel().tolist() == [2.0 * v for v in values]
    assert sorted(upstream.calls) == [1, 10]


class OverlapUpstream(RecordingUpstream):
    """Also counts the calls in flight at once; each call costs the gateway ``cost`` of CPU
    (blocking the loop, as encoding a Triton request and decoding its answer do) besides
    Triton's ``delay``."""

    def __init__(self, delay: float, cost: float = 0) -> None:
        super().__init__(delay)
        self.cost = cost
        self.in_flight = self.most_in_flight = 0

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: Any = None,
        hold: Any = None,
    ) -> Tensors:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.cost)
        try:
            return await super().infer(model, version, inputs, outputs, timeout)
        finally:
            self.in_flight -= 1


async def _client(coalescer: Coalescer, calls: int, answer_cost: float) -> None:
    """A closed-loop client: its answer costs the gateway ``answer_cost`` of CPU (blocking the
    loop, as encoding and writing an answer does); its next request comes 2 ms later."""
    for _ in range(calls):
        answer = await coalescer.infer("m", 1, request(1.0), ["y"])
        assert answer["y"].tolist() == [[2.0]]
        time.sleep(answer_cost)
        await asyncio.sleep(0.002)


def _quick_depth() -> CallDepth:
    return CallDepth(epoch=8, probe_every=2)


async def test_a_lane_keeps_two_calls_in_flight_when_triton_is_the_slower_side() -> None:
    """Triton's 20 ms call dwarfs the gateway's work: requests come back sooner with a second
    call beside the first, and the lane keeps it."""
    upstream = OverlapUpstream(delay=0.02)
    coalescer = Coalescer(upstream, max_rows=64, new_depth=_quick_depth)  # type: ignore[arg-type]
    await asyncio.gather(*(_client(coalescer, 40, 0) for _ in range(4)))
    assert upstream.most_in_flight == 2
    assert sum(upstream.calls) == 160
    assert coalescer._lanes[("m", 1, ("x",))].depth.chosen == 2


async def test_a_lane_keeps_one_call_when_the_gateway_is_the_slower_side() -> None:
    """Each Triton call costs the gateway 4 ms and Triton 1 ms: a second call only splits the
    batches into more calls, requests come back later, and the lane goes back to one."""
    upstream = OverlapUpstream(delay=0.001, cost=0.004)
    coalescer = Coalescer(upstream, max_rows=64, new_depth=_quick_depth)  # type: ignore[arg-type]
    await asyncio.gather(*(_client(coalescer, 40, 0.001) for _ in range(4)))
    assert sum(upstream.calls) == 160
    assert coalescer._lanes[("m", 1, ("x",))].depth.chosen == 1


class RunsOnUpstream(RecordingUpstream):
    """Like Triton, runs a call its caller gave up to its end, saying so to the call's hold
    (gateway/types.py): kept when the caller leaves or its deadline passes, released when the
    call is done (``release`` False: never, as a Triton that never answers)."""

    def __init__(self, delay: float, release: bool = True) -> None:
        super().__init__(delay)
        self.release = release

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: Any = None,
        hold: Any = None,
    ) -> Tensors:
        self.calls.append(len(inputs["x"]))
        run = asyncio.ensure_future(asyncio.sleep(self.delay))
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(run)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if hold is not None:
                hold.keep()
                if self.release:
                    run.add_done_callback(lambda _: hold.release())
            if isinstance(exc, TimeoutError):
                raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
            raise
        return {"y": inputs["x"] * 2}


@pytest.mark.parametrize("leaves", [False, True])
async def test_a_lone_call_given_up_holds_its_lane_until_triton_is_done(leaves: bool) -> None:
    """The lone call's caller gives up at 20 ms (its deadline, or it leaves) while Triton runs
    the call for 200 ms: requests arriving meanwhile wait in the lane, one whose deadline passes
    there never reaches Triton, and the next call starts when Triton is done with the first."""
    upstream = RunsOnUpstream(delay=0.2)
    coalescer = Coalescer(upstream, max_rows=64)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    began = loop.time()
    if leaves:
        first = asyncio.ensure_future(coalescer.infer("m", 1, request(1.0), []))
        await asyncio.sleep(0.02)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    else:
        with pytest.raises(ServingError) as caught:
            await coalescer.infer("m", 1, request(1.0), [], timeout=0.02)
        assert caught.value.code == Code.DEADLINE_EXCEEDED
    with pytest.raises(ServingError) as caught:  # expires in the lane
        await coalescer.infer("m", 1, request(2.0), [], timeout=0.02)
    assert caught.value.code == Code.DEADLINE_EXCEEDED
    answer = await coalescer.infer("m", 1, request(3.0, 4.0), [])
    assert answer["y"].tolist() == [[6.0], [8.0]]
    assert upstream.calls == [1, 2]  # the first, then the live one; never the expired one
    assert loop.time() - began >= 0.4  # after the first call's 200 ms, its own 200 ms
    lane = coalescer._lanes[("m", 1, ("x",))]
    assert (lane.calls, lane.kept) == (0, False)


async def test_a_lane_held_for_a_call_triton_never_ends_is_let_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An upstream that never says the call given up ended: the lane is let go after
    HOLD_SECONDS (here 0.1 s) and serves again."""
    monkeypatch.setattr(coalescer_module, "HOLD_SECONDS", 0.1)
    upstream = RunsOnUpstream(delay=0.05, release=False)
    coalescer = Coalescer(upstream, max_rows=64)  # type: ignore[arg-type]
    with pytest.raises(ServingError):
        await coalescer.infer("m", 1, request(1.0), [], timeout=0.01)
    lane = coalescer._lanes[("m", 1, ("x",))]
    assert (lane.calls, lane.kept) == (1, True)
    started = asyncio.get_running_loop().time()
    answer = await coalescer.infer("m", 1, request(2.0), [])
    assert answer["y"].tolist() == [[4.0]]
    assert asyncio.get_running_loop().time() - started >= 0.08  # waited for the backstop
    assert (lane.calls, lane.kept) == (0, False)


async def test_a_batch_s_answers_are_flushed_in_the_turn_its_callers_run() -> None:
    """Answering a batch arms the loop's write batch (gateway/write_batch.py) after waking its
    callers: what they hold is written in their turn, before the loop polls again."""
    loop = asyncio.get_running_loop()
    coalescer = Coalescer(RecordingUpstream(delay=0.02), max_rows=64)  # type: ignore[arg-type]
    log: list[str] = []

    async def caller(name: str) -> None:
        await coalescer.infer("m", 1, request(1.0), ["y"])
        log.append(f"answer {name}")
        write_batch.of(loop).hold(Connection(name, log))

    lone = asyncio.ensure_future(caller("lone"))
    await asyncio.sleep(0.005)  # the lone call is in flight: the next two wait, then go together
    batched = [asyncio.ensure_future(caller(name)) for name in ("b", "c")]
    await asyncio.sleep(0.001)
    ticking = Ticking(loop, log)
    await asyncio.gather(lone, *batched)
    await asyncio.sleep(0)
    ticking.handle.cancel()
    start, end = log.index("answer b"), log.index("flush c")
    assert log[start : end + 1] == ["answer b", "answer c", "flush b", "flush c"]
