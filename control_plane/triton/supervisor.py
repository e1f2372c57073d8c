"""Keep the embedded Triton alive: when it dies (OOM, kill -9), start a new one.

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


async def supervise(
    triton: EmbeddedTriton,
    on_restart: Callable[[TritonEndpoints], Awaitable[None]],
    stopping: asyncio.Event,
) -> None:
    """Check every half second until ``stopping`` is set; restart Triton when it has exited."""

    async def check() -> None:
        if triton.running():
            return
        log.error("tritonserver exited (%s); restarting it", triton.exit_status())
        triton.stop()
        endpoints = triton.start()
        await triton.wait_ready()
        await on_restart(endpoints)

    await every(CHECK_SECONDS, check, stopping)
