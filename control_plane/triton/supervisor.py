"""Keep the embedded Triton alive: when it dies (OOM, kill -9) or hangs, start a new one.

A hung Triton is alive to the OS but answers nothing: tritonserver 2.51 under load here once
found its heap corrupted ("corrupted double-linked list"), caught the SIGABRT and hung in its
signal handler, and the serve answered no predictions until stopped. So besides its exit, the
supervisor probes Triton's liveness (``/v2/health/live``, answered even while models load) and
kills one that missed ``MISSED_PROBES`` probes in a row of ``PROBE_SECONDS`` each.

A restarted Triton listens on new ports and has no models loaded; ``on_restart`` gets its new
endpoints so the owner can repoint its clients and let the reconciler restore every model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from control_plane.sources.polling import every
from control_plane.triton.embedded import EmbeddedTriton, TritonEndpoints

log = logging.getLogger(__name__)
CHECK_SECONDS = 0.5
# A probe unanswered this long is missed; this many missed in a row (about 10 s with the checks
# between) is a hung Triton. A busy one answers in milliseconds: the health route runs on its
# HTTP threads, not behind the model queues.
PROBE_SECONDS = 3.0
MISSED_PROBES = 3


async def supervise(
    triton: EmbeddedTriton,
    on_restart: Callable[[TritonEndpoints], Awaitable[None]],
    stopping: asyncio.Event,
) -> None:
    """Check every half second until ``stopping`` is set; restart Triton when it has exited or
    stopped answering."""
    missed = 0

    async def check() -> None:
        nonlocal missed
        if triton.running():
            if await triton.live(PROBE_SECONDS):
                missed = 0
                return
            missed += 1
            if missed < MISSED_PROBES:
                return
            log.error(
                "tritonserver pid %s hung (%d health probes of %.0f s unanswered); restarting it",
                triton.pid,
                missed,
                PROBE_SECONDS,
            )
            triton.kill()
        else:
            log.error("tritonserver exited (%s); restarting it", triton.exit_status())
        missed = 0
        triton.stop()
        endpoints = triton.start()
        await triton.wait_ready()
        await on_restart(endpoints)

    await every(CHECK_SECONDS, check, stopping)
