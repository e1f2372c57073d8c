"""How far a shadow version's answer is from the primary's, for the same request.

Per request: the largest absolute difference over every shared numeric output, the share of rows
with any element beyond a tolerance, and for classification outputs (a score matrix of two or
more columns) the share of rows whose top class changed. ``ShadowSummary`` adds requests up for
the admin summary; the Prometheus series live in ``gateway.shadow``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

DEFAULT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Comparison:
    rows: int
    max_abs_diff: float
    rows_beyond_tolerance: int
    top_class_rows: int  # rows compared on their top class (0 when not a classification)
    top_class_changed: int
    mismatched: bool = False  # outputs missing, of other shapes, or not numeric


def _numeric(array: np.ndarray) -> bool:
    return array.dtype.kind in "biuf"


def compare_outputs(
    primary: Mapping[str, np.ndarray],
    shadow: Mapping[str, np.ndarray],
    tolerance: float = DEFAULT_TOLERANCE,
) -> Comparison:
    """Compare two answers to one request, row by row (axis 0 is the batch)."""
    rows, max_diff, mismatched = 0, 0.0, False
    beyond: np.ndarray | None = None
    top_rows = top_changed = 0
    for name, first in primary.items():
        second = shadow.get(name)
        if second is None or second.shape != first.shape:
            mismatched = True
            continue
        if not (_numeric(first) and _numeric(second)):
            if not np.array_equal(first, second):
                mismatched = True
            continue
        a, b = first.astype(np.float64, copy=False), second.astype(np.float64, copy=False)
        diff = np.abs(a - b)
        if diff.size:
            max_diff = max(max_diff, float(np.nanmax(diff)) if not np.isnan(diff).all() else 0.0)
        per_row = diff.reshape(diff.shape[0], -1) if diff.ndim else diff.reshape(1, 1)
        rows = max(rows, per_row.shape[0])
        row_beyond = (per_row > tolerance).any(axis=1)
        beyond = (
            row_beyond
            if beyond is None or beyond.shape != row_beyond.shape
            else beyond | row_beyond
        )
        if a.ndim == 2 and a.shape[1] >= 2:  # scores over classes
            top_rows += a.shape[0]
            top_changed += int((a.argmax(axis=1) != b.argmax(axis=1)).sum())
    extra = set(shadow) - set(primary)
    return Comparison(
        rows=rows,
        max_abs_diff=max_diff,
        rows_beyond_tolerance=int(beyond.sum()) if beyond is not None else 0,
        top_class_rows=top_rows,
        top_class_changed=top_changed,
        mismatched=mismatched or bool(extra),
    )


def compare_classes(
    primary: list[list[tuple[str, float]]], shadow: list[list[tuple[str, float]]], tolerance: float
) -> Comparison:
    """Classify answers: (label, score) rows; scores compared by label, top class by score."""
    if len(primary) != len(shadow):
        return Comparison(len(primary), 0.0, 0, 0, 0, mismatched=True)
    max_diff, beyond, changed = 0.0, 0, 0
    for first, second in zip(primary, shadow, strict=True):
        scores = dict(second)
        diffs = [abs(s - scores[c]) for c, s in first if c in scores]
        row_max = max(diffs, default=0.0)
        max_diff = max(max_diff, row_max)
        beyond += int(row_max > tolerance or len(diffs) != len(first))
        if first and second:
            changed += int(max(first, key=lambda p: p[1])[0] != max(second, key=lambda p: p[1])[0])
    return Comparison(len(primary), max_diff, beyond, len(primary), changed)


@dataclass
class ShadowSummary:
    """Totals for one (model, primary version, shadow version)."""

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

    def as_json(self) -> dict[str, object]:
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
