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
        retry_failed_passes(reconciler, stopping, min_delay=0.02, max_delay=1.0)
    )
    deadline = time.monotonic() + 5
    while reconciler.needs_retry and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(task, 2)
    assert len(reconciler.calls) == 4
    gaps = [b - a for a, b in zip(reconciler.calls, reconciler.calls[1:], strict=False)]
    assert gaps[1] > gaps[0] * 1.5 and gaps[2] > gaps[1] * 1.5  # 0.04, 0.08, 0.16 s


async def test_a_healthy_reconciler_is_left_alone() -> None:
    reconciler = FlakyReconciler(failures=0)
    reconciler.needs_retry = False
    stopping = asyncio.Event()
    task = asyncio.ensure_future(retry_failed_passes(reconciler, stopping, min_delay=0.01))
    await asyncio.sleep(0.1)
    stopping.set()
    await asyncio.wait_for(task, 2)
    assert reconciler.calls == []
