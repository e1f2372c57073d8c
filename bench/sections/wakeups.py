"""One client again with no CPU ever idle: what halting and waking idle CPUs costs the 1-client rows.

At one client every request leaves the gateway's CPU idle while Triton works, and on a VM an
idle vCPU halts: the hypervisor takes it back, and the request that wakes it pays for the exit
and for caches another guest used meanwhile. Measured here on a Firecracker VM (no cpuidle
driver): one gRPC client cost the gateway 215-244 us a request, and 125-134 us with a busy loop
at ``SCHED_IDLE`` on each CPU, which runs only when nothing else would (so no CPU halts, and the
gateway, Triton and the load generator preempt it at once). The section measures the 1-client
pairs again beside such spinners; the report sets their figures beside the sweep's, the part of
those rows the host decides rather than the gateway's work.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from bench.bodies import Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import spawn, stop

# A busy loop at the idle scheduling class: below every normal process, it only fills idle time.
_SPIN = "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True: pass\n"


@contextlib.contextmanager
def spinners(count: int | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """One idle-priority busy loop per CPU while the block runs (ended with the benchmark too)."""
    with open(os.devnull, "wb") as out:
        started = [
            spawn([sys.executable, "-c", _SPIN], out) for _ in range(count or os.cpu_count() or 1)
        ]
    try:
        yield started
    finally:
        for process in started:
            stop(process)


def run(bench: Bench) -> None:
    case = Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)
    bodies = write_bodies(case, bench.bodies_dir)
    found: dict[str, Any] = {}
    with spinners():
        for kind in ("rest", "grpc"):
            found[kind] = bench.pair(case, bodies, kind, 1, bench.plan.seconds)
    bench.results["wakeups"] = found
