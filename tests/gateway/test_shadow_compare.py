"""Output comparison between a primary and a shadow answer."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.shadow_compare import compare_outputs
from tfsgate.core.observations import ShadowSummary


def test_identical_answers_show_no_difference() -> None:
    out = {"y": np.array([[1.0], [2.0]], dtype=np.float32)}
    result = compare_outputs(out, {"y": out["y"].copy()})
    assert (result.rows, result.max_abs_diff, result.rows_beyond_tolerance) == (2, 0.0, 0)
    assert not result.mismatched


def test_half_plus_three_against_half_plus_two() -> None:
    x = np.array([[1.0], [2.0], [5.0]], dtype=np.float32)
    result = compare_outputs({"y": 0.5 * x + 2}, {"y": 0.5 * x + 3}, tolerance=0.5)
    assert result.max_abs_diff == pytest.approx(1.0)
    assert result.rows_beyond_tolerance == 3


def test_top_class_changes_are_counted() -> None:
    primary = {"scores": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])}
    shadow = {"scores": np.array([[0.8, 0.2], [0.7, 0.3], [0.4, 0.6]])}
    result = compare_outputs(primary, shadow, tolerance=0.15)
    assert (result.top_class_rows, result.top_class_changed) == (3, 2)
    assert result.rows_beyond_tolerance == 2
    assert result.max_abs_diff == pytest.approx(0.5)


def test_shape_or_name_mismatch_is_flagged() -> None:
    assert compare_outputs({"y": np.zeros(2)}, {"y": np.zeros(3)}).mismatched
    assert compare_outputs({"y": np.zeros(2)}, {"z": np.zeros(2)}).mismatched


def test_summary_rates() -> None:
    summary = ShadowSummary()
    x = np.array([[1.0], [2.0]])
    summary.add(compare_outputs({"y": x}, {"y": x + 1}, 0.5), 0.001, 0.002)
    summary.add(compare_outputs({"y": x}, {"y": x}, 0.5), 0.001, 0.002)
    summary.add_error("INTERNAL")
    shown = summary.as_json()
    assert shown["requests"] == 3 and shown["errors"] == 1
    assert shown["share_rows_beyond_tolerance"] == 0.5
    assert shown["max_abs_diff"] == 1.0
