"""The spinners that keep every CPU busy for ``bench/sections/wakeups.py``: real processes at the
idle scheduling class, gone when the block ends."""

from __future__ import annotations

import os
import time

from bench.procs import cpu_seconds
from bench.sections.wakeups import spinners


def test_spinners_run_at_idle_priority_and_end_with_the_block() -> None:
    with spinners(2) as started:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # each sets its own class once running
            policies = {os.sched_getscheduler(p.pid) for p in started}
            if policies == {os.SCHED_IDLE}:
                break
            time.sleep(0.05)
        assert policies == {os.SCHED_IDLE}
        before = sum(cpu_seconds(p.pid) for p in started)
        time.sleep(0.5)  # this test sleeps: the CPUs are theirs
        assert sum(cpu_seconds(p.pid) for p in started) > before
    assert all(p.poll() is not None for p in started)
