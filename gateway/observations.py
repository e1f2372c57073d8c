"""Report what this gateway observed to the control plane, about once a second.

The rollout guard and the admin shadow summary run in the control plane, while requests are
served by one or many gateway processes. Each gateway hands its completed per-version seconds
(``gateway/version_stats.py``) and the running totals of the shadow comparisons it changed
(``gateway/shadow.py``) to an ``ObservationSink`` (the catalog: one small transaction per
report, in a thread, never on a request); the control plane merges every gateway's reports.
Nothing is reported while no model is guarded or shadowed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Protocol

from gateway.shadow import ShadowRunner
from gateway.version_stats import VersionStats
from tfsgate.core.observations import ShadowReport, VersionSecond
from tfsgate.core.pauses import pause

log = logging.getLogger(__name__)
REPORT_SECONDS = 1.0


class ObservationSink(Protocol):
    """Where reports go (``control_plane.catalog.observation_store`` in tfsgate). Blocking."""

    def report(
        self, gateway: str, seconds: Sequence[VersionSecond], shadows: Sequence[ShadowReport]
    ) -> object: ...


def gateway_id() -> str:
    """Unique per process: reports of a restarted gateway never overwrite its predecessor's."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class ObservationReporter:
    def __init__(
        self,
        stats: VersionStats,
        shadows: ShadowRunner,
        sink: ObservationSink,
        gateway: str | None = None,
    ) -> None:
        self.stats = stats
        self.shadows = shadows
        self.sink = sink
        self.gateway = gateway or gateway_id()
        self._next_second = int(time.time())

    def collect(self, now: float | None = None) -> tuple[list[VersionSecond], list[ShadowReport]]:
        """The seconds completed since the last call, and the shadow totals that changed."""
        end = int(time.time() if now is None else now)
        seconds = self.stats.seconds_between(self._next_second, end)
        self._next_second = end
        return seconds, self.shadows.changed_reports()

    async def report_once(self) -> None:
        seconds, shadows = self.collect()
        if not (seconds or shadows):
            return
        try:
            await asyncio.to_thread(self.sink.report, self.gateway, seconds, shadows)
        except BaseException:
            # Shadow totals are running sums: send them again next time. Seconds are not
            # resent (the guard sees fewer requests for them, never invented ones).
            self.shadows.mark_changed(shadows)
            raise

    async def run(self, stopping: asyncio.Event, period: float = REPORT_SECONDS) -> None:
        """Until ``stopping``, then once more; a failed report is logged."""
        while not stopping.is_set():
            await pause(stopping, period)
            try:
                await self.report_once()
            except Exception:  # noqa: BLE001 - the catalog may be down; the next report goes on
                log.exception("could not report observations")
