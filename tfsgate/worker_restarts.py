"""When a gateway worker that exited unasked is started again: one policy for both supervisors.

``tfsgate serve --gateway_workers`` (tfsgate/serve_workers.py) and ``tfsgate gateway
--gateway_workers`` (tfsgate/worker_supervisor.py) restart a worker that exited while the others
keep serving: after 1 s, doubling up to 30 s while it keeps failing within a minute of its start
(gunicorn and uvicorn's supervisors also replace a dead worker; the delay keeps a worker that fails
at once from spinning). The standard library alone: the gateway role's supervisor imports nothing
else.
"""

from __future__ import annotations

import logging

log = logging.getLogger("tfsgate")

FIRST_S = 1.0
MAX_S = 30.0
STABLE_S = 60.0  # a worker that ran this long before exiting restarts after FIRST_S again


class RestartDelay:
    """One worker's delays: ``after(ran_s)`` is how long to wait before starting it again, given
    how long its last process ran."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = FIRST_S

    def after(self, ran_s: float) -> float:
        if ran_s > STABLE_S:
            self._next = FIRST_S
        delay = self._next
        self._next = min(delay * 2, MAX_S)
        return delay

    def exited(self, index: int, pid: int, status: int, ran_s: float) -> float:
        """``after(ran_s)``, logged as both supervisors report a worker's exit."""
        delay = self.after(ran_s)
        log.error(
            "gateway worker %d (pid %d) exited with status %s: starting it again in %.0f s",
            index,
            pid,
            status,
            delay,
        )
        return delay
