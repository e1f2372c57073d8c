"""TF Serving's load retries (``--max_num_load_retries``, ``--load_retry_interval_micros``).

``LoaderHarness`` retries a failed load up to ``max_num_load_retries`` more times, waiting the
interval between attempts, while the servable stays LOADING; only then is it in error (END with
the last failure). Retries stop when the version is no longer wanted. Here the reconciler asks
this book whether a failed version is due for another attempt, so a pass never sleeps through
the interval holding its lock: the version stays LOADING and a later pass retries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, int]  # (model, version)


@dataclass
class _Attempts:
    failures: int
    next_at: float


class LoadRetries:
    def __init__(
        self,
        max_retries: int,
        interval_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_retries = max(max_retries, 0)
        self.interval = max(interval_seconds, 0.0)  # negative: TF retries at once
        self._clock = clock
        self._pending: dict[Key, _Attempts] = {}

    def failed(self, key: Key, reason: str) -> str | None:
        """Record a failed load. None: retry later (the version stays LOADING); otherwise the
        reason to record as the final failure."""
        attempts = self._pending.get(key)
        failures = (attempts.failures if attempts else 0) + 1
        if failures > self.max_retries:
            self._pending.pop(key, None)
            if self.max_retries == 0:
                return reason
            return f"{reason} (failed {failures} times, --max_num_load_retries={self.max_retries})"
        self._pending[key] = _Attempts(failures, self._clock() + self.interval)
        return None

    def waiting_reason(self, key: Key, reason: str) -> str:
        attempts = self._pending[key]
        return (
            f"load attempt {attempts.failures} failed, retry {attempts.failures} of "
            f"{self.max_retries} in {self.interval:g} s: {reason}"
        )

    def due(self, key: Key) -> bool:
        """False while a failed version waits for its next attempt."""
        attempts = self._pending.get(key)
        return attempts is None or self._clock() >= attempts.next_at

    def waiting(self, key: Key) -> bool:
        return key in self._pending and not self.due(key)

    def succeeded(self, key: Key) -> None:
        self._pending.pop(key, None)

    def pending(self, model: str | None = None) -> bool:
        """Some version (of ``model``) still has a retry to come."""
        return any(model is None or key[0] == model for key in self._pending)

    def forget(self, keep: Callable[[Key], bool]) -> None:
        """Drop the versions no longer wanted: TF stops retrying an unaspired servable."""
        for key in [k for k in self._pending if not keep(k)]:
            del self._pending[key]
