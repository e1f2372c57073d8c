"""Requests, errors and latency per (model, version) over a sliding window.

The rollout guard compares a candidate with its baseline on these. Recording is paid only for
models under a rollout (the routing table says which), and costs a dict lookup, a bisect into
fixed log-spaced latency buckets and three increments: per-second buckets in a ring, so neither
memory nor the cost of a read grows with traffic. p99 is read from the merged histogram (upper
bucket bound, so it errs high by at most one bucket, about 12 %).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass

# 0.1 ms .. ~100 s, 12 % apart.
BOUNDS = tuple(0.0001 * 1.12**i for i in range(122))
DEFAULT_HORIZON_SECONDS = 600


@dataclass(frozen=True)
class Window:
    requests: int
    errors: int
    p99_seconds: float | None


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
        now = int(time.monotonic())
        slot = now % self.horizon
        if series.seconds[slot] != now:
            series.seconds[slot] = now
            series.counts[slot] = series.errors[slot] = 0
            series.histograms[slot] = {}
        series.counts[slot] += 1
        if error:
            series.errors[slot] += 1
        histogram = series.histograms[slot]
        bucket = bisect_left(BOUNDS, seconds)
        histogram[bucket] = histogram.get(bucket, 0) + 1

    def window(self, model: str, version: int, seconds: float) -> Window:
        """The last ``seconds`` (at most the horizon) of one version."""
        series = self._series.get((model, version))
        if series is None:
            return Window(0, 0, None)
        now = int(time.monotonic())
        oldest = now - min(int(seconds), self.horizon - 1)
        requests = errors = 0
        merged: dict[int, int] = {}
        for slot in range(self.horizon):
            if series.seconds[slot] < oldest:
                continue
            requests += series.counts[slot]
            errors += series.errors[slot]
            for bucket, count in list(series.histograms[slot].items()):
                merged[bucket] = merged.get(bucket, 0) + count
        return Window(requests, errors, _quantile(merged, 0.99))

    def forget(self, model: str, version: int) -> None:
        self._series.pop((model, version), None)


def _quantile(histogram: dict[int, int], q: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return BOUNDS[bucket] if bucket < len(BOUNDS) else BOUNDS[-1]
    return BOUNDS[-1]
