"""Argument parsing and output of the rollout CLI verbs (the e2e tests run them for real)."""

from __future__ import annotations

import pytest

from tfsgate.admin_client import AdminCallError
from tfsgate.rollout_cli import format_rollout_status, parse_duration, parse_weights


def test_weights_over_versions_and_labels() -> None:
    assert parse_weights(["stable=90", "canary=10", "3=0.5"]) == {
        "stable": 90.0,
        "canary": 10.0,
        "3": 0.5,
    }
    for bad in (["stable"], ["=5"], ["stable=lots"]):
        with pytest.raises(AdminCallError):
            parse_weights(bad)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30s", 30), ("5m", 300), ("1h", 3600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(AdminCallError, match="not a duration"):
        parse_duration("soon")


def test_status_table() -> None:
    status = {
        "model": "m",
        "rollout": {
            "id": 3,
            "candidate": 2,
            "baseline": 1,
            "steps": [5, 25, 100],
            "step_index": 1,
            "weight": 25,
            "state": "running",
            "reason": "",
        },
        "observation": {
            "candidate": {"requests": 40, "error_rate": 0.025, "p99_seconds": 0.012},
            "baseline": {"requests": 400, "error_rate": 0.0, "p99_seconds": None},
        },
        "quality": {"1": {"feedback": 50, "metrics": {"accuracy": 0.9}}},
    }
    shown = format_rollout_status(status)
    assert "rollout 3 of version 2 (baseline 1) running, step 2/3 at 25 %" in shown
    assert "candidate  2        40        0.0250      12.0" in shown
    assert "baseline   1        400       0.0000      -" in shown
    assert "ACCURACY" in shown and "0.9000" in shown
