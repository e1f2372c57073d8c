"""How far a shadow version's answer is from the primary's, for the same request.

Per request: the largest absolute difference over every shared numeric output, the share of rows
with any element beyond a tolerance, and for classification outputs (a score matrix of two or
more columns) the share of rows whose top class changed. ``ShadowSummary``
(``tfsgate/core/observations.py``) adds requests up for the admin summary; the Prometheus series
live in ``gateway.shadow``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tfsgate.core.observations import Comparison

DEFAULT_TOLERANCE = 1e-6


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
