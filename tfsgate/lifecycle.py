"""Running a role: until SIGTERM/SIGINT, start-up failures reported as TF Serving reports them."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import uvloop

from control_plane.catalog.errors import CatalogError
from control_plane.sources.base_path import SourceError
from control_plane.triton.embedded import TritonStartError
from tfsgate import runloop
from tfsgate.core.status import Code
from tfsgate.startup import StartupError, report_failure

log = logging.getLogger("tfsgate")


def stop_requested() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: TF Serving's model server stops on both."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> int:
    """Start, settle the heap (tfsgate/runloop.py), serve until a signal, then stop: exit 0."""
    stopping = stop_requested()
    try:
        await start()
        runloop.settle_heap()
        await stopping.wait()
        log.info("stopping")
    finally:
        await stop()
    return 0


def run(main: Callable[[], Awaitable[int]]) -> int:
    """The role's exit status; a start-up failure is TF Serving's "Failed to start server" line
    and exit status 255. The loop is uvloop's (tfsgate/runloop.py says why)."""
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main())  # type: ignore[arg-type]
    except StartupError as exc:
        return report_failure(exc)
    except CatalogError as exc:
        return report_failure(StartupError(exc.message, exc.code))
    except (SourceError, TritonStartError) as exc:
        return report_failure(StartupError(str(exc), Code.FAILED_PRECONDITION))
