"""The rollout guard's decisions, as a pure state machine (no clock, catalog or network).

A rollout gives the candidate ``steps[i]`` percent of the traffic that names no version or label
and the baseline (the ``stable`` version when it started) the rest. Every tick compares the two
over a sliding window: error rate, p99 latency and, when feedback has arrived for both, one
chosen quality metric. A breach rolls back (candidate weight 0); a step that has lasted
``interval`` with enough candidate requests moves to the next one; after the last step the
candidate is promoted. The service in ``control_plane.rollouts.service`` applies the decisions.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from control_plane.quality.metrics import LOWER_IS_BETTER


class RolloutState(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


@dataclass(frozen=True)
class Thresholds:
    """Per model, in the catalog; these defaults apply to a model without a row."""

    window_seconds: float = 60.0
    min_requests: int = 20  # candidate requests in the window before it is judged or advanced
    max_error_rate_increase: float = 0.01  # absolute: candidate rate - baseline rate
    max_p99_ratio: float = 1.5
    min_p99_increase_seconds: float = 0.01  # ratios of sub-millisecond p99s are noise
    # A p99 over a handful of requests is their maximum: one cold first call (a new version's
    # graph warming up) would roll back a healthy canary. Latency is judged past this count.
    min_latency_requests: int = 50
    quality_metric: str | None = None
    max_quality_drop: float = 0.02  # absolute, in the metric's own direction
    min_feedback: int = 20

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Thresholds:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


@dataclass(frozen=True)
class WindowStats:
    """One version over the window."""

    requests: int = 0
    errors: int = 0
    p99_seconds: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "p99_seconds": self.p99_seconds,
        }


@dataclass(frozen=True)
class Observation:
    candidate: WindowStats
    baseline: WindowStats
    candidate_quality: float | None = None
    baseline_quality: float | None = None
    candidate_feedback: int = 0
    baseline_feedback: int = 0

    def figures(self) -> dict[str, object]:
        return {
            "candidate": self.candidate.to_json(),
            "baseline": self.baseline.to_json(),
            "candidate_quality": self.candidate_quality,
            "baseline_quality": self.baseline_quality,
            "candidate_feedback": self.candidate_feedback,
            "baseline_feedback": self.baseline_feedback,
        }


@dataclass(frozen=True)
class Rollout:
    model: str
    candidate: int
    baseline: int | None
    steps: tuple[int, ...]
    interval_seconds: float
    step_index: int = 0
    step_started_at: float = 0.0
    state: RolloutState = RolloutState.RUNNING
    reason: str = ""
    id: int = 0

    @property
    def weight(self) -> int:
        """The candidate's current percentage (0 once rolled back or aborted)."""
        if self.state in (RolloutState.ROLLED_BACK, RolloutState.ABORTED):
            return 0
        return self.steps[min(self.step_index, len(self.steps) - 1)]


class Action(enum.StrEnum):
    HOLD = "hold"
    STEP = "step"
    COMPLETE = "complete"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Decision:
    action: Action
    rollout: Rollout
    figures: dict[str, object] = field(default_factory=dict)


def check_steps(steps: Sequence[int]) -> tuple[int, ...]:
    """Steps are increasing percentages in (0, 100]; the last one is usually 100."""
    parsed = tuple(int(s) for s in steps)
    if not parsed:
        raise ValueError("a rollout needs at least one step")
    if any(not 0 < s <= 100 for s in parsed):
        raise ValueError(f"steps must be percentages in 1..100, got {list(parsed)}")
    if any(b <= a for a, b in zip(parsed, parsed[1:], strict=False)):
        raise ValueError(f"steps must increase, got {list(parsed)}")
    return parsed


def find_breach(observation: Observation, thresholds: Thresholds) -> str | None:
    """Why the candidate is worse than the baseline, or None."""
    cand, base = observation.candidate, observation.baseline
    if cand.requests < max(thresholds.min_requests, 1):
        return None
    if cand.error_rate > base.error_rate + thresholds.max_error_rate_increase:
        return (
            f"error rate {cand.error_rate:.4f} > baseline {base.error_rate:.4f}"
            f" + {thresholds.max_error_rate_increase}"
        )
    if (
        cand.p99_seconds is not None
        and base.p99_seconds is not None
        and cand.requests >= thresholds.min_latency_requests
    ):
        limit = max(
            base.p99_seconds * thresholds.max_p99_ratio,
            base.p99_seconds + thresholds.min_p99_increase_seconds,
        )
        if cand.p99_seconds > limit:
            return (
                f"p99 {cand.p99_seconds * 1000:.1f} ms > {limit * 1000:.1f} ms"
                f" (baseline {base.p99_seconds * 1000:.1f} ms x {thresholds.max_p99_ratio})"
            )
    metric = thresholds.quality_metric
    if (
        metric
        and observation.candidate_quality is not None
        and observation.baseline_quality is not None
        and min(observation.candidate_feedback, observation.baseline_feedback)
        >= thresholds.min_feedback
    ):
        worse = observation.candidate_quality - observation.baseline_quality
        if metric not in LOWER_IS_BETTER:
            worse = -worse
        if worse > thresholds.max_quality_drop:
            return (
                f"{metric} {observation.candidate_quality:.4f} vs baseline"
                f" {observation.baseline_quality:.4f}: worse by {worse:.4f}"
                f" > {thresholds.max_quality_drop}"
            )
    return None


def decide(
    rollout: Rollout, observation: Observation, thresholds: Thresholds, now: float
) -> Decision:
    """The next move of a running rollout at time ``now`` (seconds, any monotonic origin)."""
    if rollout.state is not RolloutState.RUNNING:
        return Decision(Action.HOLD, rollout)
    figures = observation.figures()
    breach = find_breach(observation, thresholds)
    if breach is not None:
        figures["reason"] = breach
        figures["weight_before"] = rollout.weight
        rolled = replace(rollout, state=RolloutState.ROLLED_BACK, reason=breach)
        return Decision(Action.ROLLBACK, rolled, figures)
    due = now - rollout.step_started_at >= rollout.interval_seconds
    enough = observation.candidate.requests >= thresholds.min_requests
    if not (due and enough):
        return Decision(Action.HOLD, rollout, figures)
    if rollout.step_index + 1 < len(rollout.steps):
        moved = replace(rollout, step_index=rollout.step_index + 1, step_started_at=now)
        figures["weight"] = moved.weight
        return Decision(Action.STEP, moved, figures)
    done = replace(rollout, state=RolloutState.COMPLETED, reason="all steps passed")
    return Decision(Action.COMPLETE, done, figures)
