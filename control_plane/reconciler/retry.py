"""Retry failed reconcile passes with exponential backoff."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from tfsgate.core.pauses import pause

log = logging.getLogger(__name__)


class Retryable(Protocol):
    needs_retry: bool

    async def reconcile(self) -> None: ...


async def retry_failed_passes(
    reconciler: Retryable,
    stopping: asyncio.Event,
    min_delay: float = 0.5,
    max_delay: float = 30.0,
) -> None:
    """Retry a failed pass (Triton or the database unreachable, a model's pass raising) with
    exponential backoff, whatever the poll settings: with ``--file_system_poll_wait_seconds=0``
    nothing else would ever run the pass again."""
    delay = min_delay
    while not stopping.is_set():
        if await pause(stopping, delay if reconciler.needs_retry else min_delay):
            return
        if not reconciler.needs_retry:
            delay = min_delay
            continue
        try:
            await reconciler.reconcile()
        except Exception:  # noqa: BLE001 - logged; the loop backs off and tries again
            log.exception("reconcile retry failed; next in %.1f s", min(delay * 2, max_delay))
        delay = min_delay if not reconciler.needs_retry else min(delay * 2, max_delay)
