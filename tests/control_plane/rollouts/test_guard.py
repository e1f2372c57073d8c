"""The rollout guard's decisions."""

from __future__ import annotations

import pytest

from control_plane.rollouts.guard import (
    Action,
    Observation,
    Rollout,
    RolloutState,
    Thresholds,
    WindowStats,
    check_steps,
    decide,
    find_breach,
)

HEALTHY = WindowStats(requests=200, errors=0, p99_seconds=0.005)
T = Thresholds(min_requests=20)


def rollout(step: int = 0, started: float = 0.0) -> Rollout:
    return Rollout("m", 2, 1, (5, 25, 50, 100), 10.0, step, started)


def test_holds_until_the_interval_passes_then_steps() -> None:
    obs = Observation(HEALTHY, HEALTHY)
    assert decide(rollout(), obs, T, now=5).action is Action.HOLD
    moved = decide(rollout(), obs, T, now=10)
    assert moved.action is Action.STEP and moved.rollout.weight == 25
    assert moved.rollout.step_started_at == 10


def test_waits_for_enough_candidate_requests() -> None:
    obs = Observation(WindowStats(5, 0, 0.005), HEALTHY)
    assert decide(rollout(), obs, T, now=100).action is Action.HOLD


def test_last_step_completes() -> None:
    done = decide(rollout(step=3), Observation(HEALTHY, HEALTHY), T, now=10)
    assert done.action is Action.COMPLETE and done.rollout.state is RolloutState.COMPLETED


def test_errors_roll_back_with_figures() -> None:
    obs = Observation(WindowStats(100, 30, 0.005), HEALTHY)
    decision = decide(rollout(step=1), obs, T, now=1)
    assert decision.action is Action.ROLLBACK
    assert decision.rollout.weight == 0
    assert "error rate 0.3000" in str(decision.figures["reason"])
    assert decision.figures["candidate"] == {
        "requests": 100,
        "errors": 30,
        "error_rate": 0.3,
        "p99_seconds": 0.005,
    }
    assert decision.figures["weight_before"] == 25


def test_slow_candidate_rolls_back_but_small_absolute_jitter_does_not() -> None:
    slow = Observation(WindowStats(100, 0, 0.250), HEALTHY)
    assert "p99 250.0 ms" in (find_breach(slow, T) or "")
    jitter = Observation(WindowStats(100, 0, 0.009), HEALTHY)  # 1.8x but only +4 ms
    assert find_breach(jitter, T) is None


def test_quality_drop_rolls_back_in_the_metric_direction() -> None:
    t = Thresholds(min_requests=1, quality_metric="accuracy", min_feedback=10)
    worse = Observation(HEALTHY, HEALTHY, 0.80, 0.90, 50, 50)
    better = Observation(HEALTHY, HEALTHY, 0.95, 0.90, 50, 50)
    assert "accuracy 0.8000" in (find_breach(worse, t) or "")
    assert find_breach(better, t) is None
    loss = Thresholds(min_requests=1, quality_metric="log_loss", min_feedback=10)
    assert find_breach(Observation(HEALTHY, HEALTHY, 0.9, 0.3, 50, 50), loss) is not None
    too_little = Observation(HEALTHY, HEALTHY, 0.5, 0.9, 5, 50)
    assert find_breach(too_little, t) is None


def test_steps_are_checked() -> None:
    assert check_steps([5, 25, 100]) == (5, 25, 100)
    for bad in ([], [0, 50], [50, 25], [5, 101]):
        with pytest.raises(ValueError):
            check_steps(bad)


def test_thresholds_json_round_trip() -> None:
    t = Thresholds(window_seconds=30, quality_metric="auc_roc")
    assert Thresholds.from_json(t.to_json()) == t
