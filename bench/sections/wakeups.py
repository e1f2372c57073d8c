"""One client again with no CPU ever idle, then with the gateway on a CPU of its own: what the
host, rather than the gateway's work, makes of the 1-client rows.

At one client every request leaves the gateway's CPU idle while Triton works. Two costs come
from the host, not the gateway's code:

- On a VM an idle vCPU halts: the hypervisor takes it back, and the request that wakes it pays
  for the exit. Measured on a Firecracker VM with no cpuidle driver: one gRPC client cost the
  gateway 215-244 us a request, and 125-134 us with a busy loop at ``SCHED_IDLE`` on each CPU,
  which runs only when nothing else would (so no CPU halts, and the gateway, Triton and the load
  generator preempt it at once).
- On 2 cores the gateway runs on the CPU Triton, its Python stub and the load generator ran on a
  moment before, and starts each request with their code and data in its caches. Measured on
  another such VM (haltpoll cpuidle driver): one REST client cost the gateway 255 us a request,
  242 us with the spinners, and 168 us (user 119, kernel 49) with its threads on one CPU and
  everything else on the other; one gRPC client 265 us, and 190 us so pinned.

The section measures the 1-client pairs again in both ways; the report sets their figures beside
the sweep's. Pinning is this measurement's, not the product's: on 2 cores it would halve what
either side could use at 16 clients.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

from bench.bodies import Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import group_pids, pin, spawn, stop

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


@contextlib.contextmanager
def own_cpu(gateway: int, triton_pgid: Callable[[], int]) -> Iterator[bool]:
    """The gateway's threads on the last CPU alone, Triton's processes and this one (so the load
    generators it starts) on the others while the block runs; all back on every CPU after, a
    Triton the serve restarted meanwhile too (``triton_pgid`` is read again: it inherited the
    gateway's CPU). False (nothing pinned) with one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield False
        return
    others = [os.getpid(), *group_pids(triton_pgid())]
    pin([gateway], {cpus[-1]})
    pin(others, set(cpus[:-1]))
    try:
        yield True
    finally:
        pin([gateway, *others, *group_pids(triton_pgid())], set(cpus))


def run(bench: Bench) -> None:
    assert bench.serve is not None
    case = Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)
    bodies = write_bodies(case, bench.bodies_dir)
    busy: dict[str, Any] = {}
    with spinners():
        for kind in ("rest", "grpc"):
            busy[kind] = bench.pair(case, bodies, kind, 1, bench.plan.seconds)
    bench.results["wakeups"] = busy
    alone: dict[str, Any] = {}
    serve = bench.serve
    with own_cpu(serve.process.pid, lambda: serve.triton_pgid) as pinned:
        for kind in ("rest", "grpc") if pinned else ():
            alone[kind] = bench.pair(case, bodies, kind, 1, bench.plan.seconds)
    if alone:
        bench.results["own_cpu"] = alone
