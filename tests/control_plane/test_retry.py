"""retry_failed_passes: exponential backoff until a pass succeeds (pure logic, a stand-in
reconciler)."""

from __future__ import annotations

import asyncio
import time

from control_plane.reconciler import retry_failed_passes


class FlakyReconciler:
    """Fails its first ``failures`` passes (raising, as when Triton is unreachable)."""

    def __init__(self, failures: int) -> None:
        self.needs_retry = True
        self.failures = failures
        self.calls: list[float] = []

    async def reconcile(self) -> None:
        self.calls.append(time.monotonic())
        self.needs_retry = True
        if len(self.calls) <= self.failures:
            raise RuntimeError("Triton unreachable")
        self.needs_retry = False


async def test_retries_with_growing_delays_until_a_pass_succeeds() -> None:
    reconciler = FlakyReconciler(failures=3)
    stopping = asyncio.Event()
    task = asyncio.ensure_future(
        retry_failed_passes(reconciler, stopping, min_delay=0.05, max_delay=5.0)
    )
    deadline = time.monotonic() + 10
    while reconciler.needs_retry and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(task, 2)
    assert len(reconciler.calls) == 4
    gaps = [b - a for a, b in zip(reconciler.calls, reconciler.calls[1:], strict=False)]
    # Delays double: 0.1, 0.2, 0.4 s. Generous bounds: a loaded CI machine adds jitter.
    assert gaps[0] >= 0.09 and gaps[2] >= 0.39
    assert gaps[2] > gaps[0] + 0.2


class HealthyReconciler(FlakyReconciler):
    """Never needs a retry; counts the loop's looks at ``needs_retry`` (one per decision)."""

    def __init__(self) -> None:
        super().__init__(failures=0)
        self.looks = 0

    @property  # type: ignore[override]
    def needs_retry(self) -> bool:
        self.looks += 1
        return False

    @needs_retry.setter
    def needs_retry(self, value: bool) -> None:
        pass


async def test_a_healthy_reconciler_is_left_alone() -> None:
    reconciler = HealthyReconciler()
    stopping = asyncio.Event()
    task = asyncio.ensure_future(retry_failed_passes(reconciler, stopping, min_delay=0.01))

    async def decided_five_times() -> None:
        while reconciler.looks < 10:  # two looks per round: the wait, then the decision
            await asyncio.sleep(0.01)

    await asyncio.wait_for(decided_five_times(), 10)
    stopping.set()
    await asyncio.wait_for(task, 2)
    assert reconciler.calls == []
