"""Requests, errors and latency per (model, version) and wall-clock second, in this process.

The rollout guard compares a candidate with its baseline on these, after every gateway has
reported its seconds to the catalog (``gateway/observations.py``). Recording is paid only for
models under a rollout (the routing table says which), and costs a dict lookup, a bisect into
fixed log-spaced latency buckets and three increments: per-second buckets in a ring, so neither
memory nor the cost of a read grows with traffic. p99 is read from the merged histogram (upper
bucket bound, so it errs high by at most one bucket, about 12 %).
"""

from __future__ import annotations

import time

from tfsgate.core.observations import VersionSecond, Window, bucket_of, merge_window

DEFAULT_HORIZON_SECONDS = 600


class _Series:
    __slots__ = ("counts", "errors", "histograms", "seconds")

    def __init__(self, horizon: int) -> None:
        self.seconds = [-1] * horizon
        self.counts = [0] * horizon
        self.errors = [0] * horizon
        self.histograms: list[dict[int, int]] = [{} for _ in range(horizon)]


class VersionStats:
    """Thread-compatible for one event loop writer; readers merge a snapshot."""

    def __init__(self, horizon_seconds: int = DEFAULT_HORIZON_SECONDS) -> None:
        self.horizon = horizon_seconds
        self._series: dict[tuple[str, int], _Series] = {}

    def record(self, model: str, version: int, seconds: float, error: bool) -> None:
        series = self._series.get((model, version))
        if series is None:
            series = self._series[(model, version)] = _Series(self.horizon)
        now = int(time.time())
        slot = now % self.horizon
        if series.seconds[slot] != now:
            series.seconds[slot] = now
            series.counts[slot] = series.errors[slot] = 0
            series.histograms[slot] = {}
        series.counts[slot] += 1
        if error:
            series.errors[slot] += 1
        histogram = series.histograms[slot]
        bucket = bucket_of(seconds)
        histogram[bucket] = histogram.get(bucket, 0) + 1

    def window(self, model: str, version: int, seconds: float) -> Window:
        """The last ``seconds`` (at most the horizon) of one version, this process only."""
        series = self._series.get((model, version))
        if series is None:
            return Window(0, 0, None)
        oldest = int(time.time()) - min(int(seconds), self.horizon - 1)
        return merge_window(
            (series.counts[slot], series.errors[slot], dict(series.histograms[slot]))
            for slot in range(self.horizon)
            if series.seconds[slot] >= oldest
        )

    def seconds_between(self, first: int, end: int) -> list[VersionSecond]:
        """Every (model, version) second in ``[first, end)`` with requests: what a gateway
        reports. Call with ``end`` at most the current second, which is still being counted."""
        out = []
        for (model, version), series in list(self._series.items()):
            for second in range(max(first, end - self.horizon + 1), end):
                slot = second % self.horizon
                if series.seconds[slot] == second and series.counts[slot]:
                    out.append(
                        VersionSecond(
                            model,
                            version,
                            second,
                            series.counts[slot],
                            series.errors[slot],
                            dict(series.histograms[slot]),
                        )
                    )
        return out

    def forget(self, model: str, version: int) -> None:
        self._series.pop((model, version), None)
