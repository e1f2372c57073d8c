"""The REST door's deadlines on one timer (gateway/deadlines.py), on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from gateway.deadlines import Deadlines
from tfsgate.core.status import Code, ServingError


async def _answer(value: str, seconds: float = 0.0) -> str:
    await asyncio.sleep(seconds)
    return value


def test_answers_within_the_deadline_leave_nothing_queued() -> None:
    async def main() -> None:
        deadlines = Deadlines(5.0)
        answers = await asyncio.gather(*(deadlines.within(_answer(str(i))) for i in range(500)))
        assert answers == [str(i) for i in range(500)]
        assert len(deadlines) == 0

    asyncio.run(main())


def test_a_late_call_is_deadline_exceeded_and_its_task_goes_on() -> None:
    async def main() -> None:
        deadlines = Deadlines(0.05, "Request timed out")
        began = asyncio.get_running_loop().time()
        with pytest.raises(ServingError) as exc_info:
            await deadlines.within(_answer("late", 10.0))
        assert exc_info.value.code == Code.DEADLINE_EXCEEDED
        assert exc_info.value.message == "Request timed out"
        assert 0.04 <= asyncio.get_running_loop().time() - began < 1.0
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # uncancelled: the task goes on
        assert await _answer("after", 0.01) == "after"

    asyncio.run(main())


def test_deadlines_expire_in_order_and_spare_the_calls_that_answered() -> None:
    async def main() -> None:
        deadlines = Deadlines(0.1)
        outcomes: dict[str, str] = {}

        async def request(name: str, seconds: float, delay: float) -> None:
            await asyncio.sleep(delay)
            try:
                outcomes[name] = await deadlines.within(_answer(name, seconds))
            except ServingError as exc:
                outcomes[name] = exc.code.name

        await asyncio.gather(
            request("slow", 10.0, 0.0),
            request("quick", 0.01, 0.02),
            request("slow-later", 10.0, 0.05),
            request("quick-later", 0.01, 0.12),
        )
        assert outcomes == {
            "slow": "DEADLINE_EXCEEDED",
            "quick": "quick",
            "slow-later": "DEADLINE_EXCEEDED",
            "quick-later": "quick-later",
        }
        assert len(deadlines) == 0

    asyncio.run(main())


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> None:
        deadlines = Deadlines(5.0)
        task = asyncio.create_task(deadlines.within(_answer("never", 10.0)))
        await asyncio.sleep(0.01)
        task.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(deadlines) == 0

    asyncio.run(main())


def test_a_call_that_swallows_its_cancellation_keeps_its_answer() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(10.0)
        except asyncio.CancelledError:
            return "answered anyway"
        return "slept"

    async def main() -> None:
        deadlines = Deadlines(0.02)
        assert await deadlines.within(stubborn()) == "answered anyway"
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0

    asyncio.run(main())


def test_finished_calls_behind_a_slow_one_are_compacted() -> None:
    async def main() -> None:
        deadlines = Deadlines(5.0)
        slow = asyncio.create_task(deadlines.within(_answer("slow", 0.5)))
        await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.gather(*(deadlines.within(_answer("x")) for _ in range(100)))
        # 2000 calls answered behind the open one: the queue stays near the open count.
        assert len(deadlines) <= 2 * 1 + 64 + 100
        assert await slow == "slow"
        assert len(deadlines) == 0

    asyncio.run(main())
