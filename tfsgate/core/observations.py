"""What gateways observe for rollouts, as the control plane reads it: the contract between them.

Gateways count requests, errors and a latency histogram per (model, version) and wall-clock
second, and add up shadow comparisons per (model, primary version, shadow version). Every gateway
process reports both to the catalog about once a second (``gateway/observations.py``); the
control plane merges what every gateway reported (``control_plane/catalog/observation_store.py``)
for the rollout guard and the admin shadow summary. Seconds are wall-clock (epoch) seconds so
that processes agree on them; histograms share fixed bucket bounds so that they add up.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

# Latency bucket upper bounds: 0.1 ms .. ~100 s, 12 % apart. A p99 read from merged buckets
# errs high by at most one bucket.
BOUNDS = tuple(0.0001 * 1.12**i for i in range(122))


def bucket_of(seconds: float) -> int:
    return bisect_left(BOUNDS, seconds)


def quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile, or None when empty."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return BOUNDS[bucket] if bucket < len(BOUNDS) else BOUNDS[-1]
    return BOUNDS[-1]


@dataclass(frozen=True)
class Window:
    """One version over a window: what the guard compares."""

    requests: int
    errors: int
    p99_seconds: float | None


@dataclass(frozen=True)
class VersionSecond:
    """One gateway's outcomes for one (model, version) in one wall-clock second."""

    model: str
    version: int
    second: int
    requests: int
    errors: int
    histogram: dict[int, int]  # latency bucket -> requests


def merge_window(seconds: Iterable[tuple[int, int, Mapping[int, int]]]) -> Window:
    """(requests, errors, histogram) of any seconds and gateways -> one window."""
    requests = errors = 0
    merged: dict[int, int] = {}
    for count, failed, histogram in seconds:
        requests += count
        errors += failed
        for bucket, n in histogram.items():
            merged[int(bucket)] = merged.get(int(bucket), 0) + n
    return Window(requests, errors, quantile(merged, 0.99))


@dataclass(frozen=True)
class Comparison:
    """How far one shadow answer is from the primary's (``gateway/shadow_compare.py``)."""

    rows: int
    max_abs_diff: float
    rows_beyond_tolerance: int
    top_class_rows: int  # rows compared on their top class (0 when not a classification)
    top_class_changed: int
    mismatched: bool = False  # outputs missing, of other shapes, or not numeric


@dataclass
class ShadowSummary:
    """Totals for one (model, primary version, shadow version): one gateway's, or merged."""

    requests: int = 0
    errors: int = 0
    dropped: int = 0
    mismatched: int = 0
    rows: int = 0
    rows_beyond_tolerance: int = 0
    top_class_rows: int = 0
    top_class_changed: int = 0
    max_abs_diff: float = 0.0
    shadow_latency_sum: float = 0.0
    primary_latency_sum: float = 0.0
    error_codes: dict[str, int] = field(default_factory=dict)

    def add(self, comparison: Comparison, primary_seconds: float, shadow_seconds: float) -> None:
        self.requests += 1
        self.rows += comparison.rows
        self.rows_beyond_tolerance += comparison.rows_beyond_tolerance
        self.top_class_rows += comparison.top_class_rows
        self.top_class_changed += comparison.top_class_changed
        self.max_abs_diff = max(self.max_abs_diff, comparison.max_abs_diff)
        self.mismatched += int(comparison.mismatched)
        self.primary_latency_sum += primary_seconds
        self.shadow_latency_sum += shadow_seconds

    def add_error(self, code: str) -> None:
        self.requests += 1
        self.errors += 1
        self.error_codes[code] = self.error_codes.get(code, 0) + 1

    def merge(self, other: ShadowSummary) -> None:
        for f in fields(self):
            if f.name == "max_abs_diff":
                self.max_abs_diff = max(self.max_abs_diff, other.max_abs_diff)
            elif f.name == "error_codes":
                for code, n in other.error_codes.items():
                    self.error_codes[code] = self.error_codes.get(code, 0) + n
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def totals(self) -> dict[str, object]:
        """The raw totals (what a gateway reports; ``from_totals`` reads them back)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_totals(cls, data: Mapping[str, object]) -> ShadowSummary:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]

    def as_json(self) -> dict[str, object]:
        """The admin summary: totals and the shares and means derived from them."""
        compared = self.requests - self.errors
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_codes": dict(self.error_codes),
            "dropped": self.dropped,
            "mismatched": self.mismatched,
            "max_abs_diff": self.max_abs_diff,
            "rows": self.rows,
            "rows_beyond_tolerance": self.rows_beyond_tolerance,
            "share_rows_beyond_tolerance": self.rows_beyond_tolerance / self.rows
            if self.rows
            else 0.0,
            "top_class_change_rate": self.top_class_changed / self.top_class_rows
            if self.top_class_rows
            else 0.0,
            "mean_primary_latency_seconds": self.primary_latency_sum / compared
            if compared
            else 0.0,
            "mean_shadow_latency_seconds": self.shadow_latency_sum / compared if compared else 0.0,
        }


@dataclass(frozen=True)
class ShadowReport:
    """One gateway's running totals for one (model, primary version, shadow version)."""

    model: str
    primary_version: int
    shadow_version: int
    summary: ShadowSummary
