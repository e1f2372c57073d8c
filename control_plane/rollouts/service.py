"""The rollout guard's loop: every tick, judge each running rollout and apply the decision.

Decisions come from ``control_plane.rollouts.guard``; the catalog applies them (weights, promote,
audit event with the figures) in one transaction each, then the routing table is republished so
gateways route by the new weights at once. Request outcomes per version come from a
``StatsSource``: what every gateway reported to the catalog
(``control_plane/catalog/observation_store.py``); quality from feedback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from control_plane.catalog.entities import RolloutRecord
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.quality.feedback import FeedbackService
from control_plane.rollouts.guard import (
    Action,
    Observation,
    Rollout,
    RolloutState,
    Thresholds,
    WindowStats,
    check_steps,
    decide,
)
from tfsgate.core.pauses import pause
from tfsgate.core.status import Code

log = logging.getLogger(__name__)
ACTOR = "rollout-guard"


class WindowLike(Protocol):
    @property
    def requests(self) -> int: ...

    @property
    def errors(self) -> int: ...

    @property
    def p99_seconds(self) -> float | None: ...


class StatsSource(Protocol):
    def window(self, model: str, version: int, seconds: float) -> WindowLike: ...


def _stats(window: WindowLike) -> WindowStats:
    return WindowStats(window.requests, window.errors, window.p99_seconds)


def guard_rollout(record: RolloutRecord) -> Rollout:
    return Rollout(
        model=record.model,
        candidate=record.candidate,
        baseline=record.baseline,
        steps=record.steps,
        interval_seconds=record.interval_seconds,
        step_index=record.step_index,
        step_started_at=record.step_started_at.timestamp(),
        state=RolloutState(record.state),
        reason=record.reason,
        id=record.id,
    )


class RolloutService:
    def __init__(
        self,
        store: CatalogStore,
        publish: Callable[[], Awaitable[Any]],
        stats: StatsSource,
        feedback: FeedbackService | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publish = publish
        self.stats = stats
        self.feedback = feedback
        self.clock = clock
        # The last baseline window with data, per rollout: at 100 % the baseline gets no traffic.
        self._baseline_seen: dict[int, WindowStats] = {}

    # -- operator verbs ------------------------------------------------------------------------
    async def start(
        self, model: str, version: int, steps: Sequence[int], interval_seconds: float, actor: str
    ) -> RolloutRecord:
        try:
            parsed = check_steps(steps)
        except ValueError as exc:
            raise CatalogError(Code.INVALID_ARGUMENT, str(exc)) from None
        record = await asyncio.to_thread(
            self.store.rollouts.start_rollout, model, version, parsed, interval_seconds, actor
        )
        await self.publish()
        return record

    async def abort(self, model: str, actor: str) -> RolloutRecord:
        record = await asyncio.to_thread(self.store.rollouts.latest_rollout, model)
        if record is None or record.state != RolloutState.RUNNING:
            raise CatalogError(Code.FAILED_PRECONDITION, f"model {model!r} has no running rollout")
        done = await asyncio.to_thread(
            self.store.rollouts.advance_rollout, model, record.id, "abort", actor, None, "aborted"
        )
        await self.publish()
        return done

    def status(self, model: str) -> dict[str, Any]:
        """The latest rollout with its live comparison (blocking: call in a thread)."""
        record = self.store.rollouts.latest_rollout(model)
        thresholds = Thresholds.from_json(self.store.rollouts.get_thresholds(model))
        out: dict[str, Any] = {
            "model": model,
            "rollout": record.to_json() if record else None,
            "thresholds": thresholds.to_json(),
        }
        if record is not None:
            out["observation"] = self.observe(record, thresholds).figures()
        if self.feedback is not None:
            out["quality"] = {
                str(v): q
                for v, q in self.feedback.metrics(model, thresholds.window_seconds).items()
            }
        return out

    # -- the loop ------------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event, tick_seconds: float = 1.0) -> None:
        while not stopping.is_set():
            if await pause(stopping, tick_seconds):
                return
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - logged; the next tick tries again
                log.exception("rollout guard tick failed")

    async def tick(self) -> list[tuple[str, Action]]:
        """Judge every running rollout once; returns what was done (for tests and logs)."""
        done: list[tuple[str, Action]] = []
        for record in await asyncio.to_thread(self.store.rollouts.running_rollouts):
            thresholds = Thresholds.from_json(
                await asyncio.to_thread(self.store.rollouts.get_thresholds, record.model)
            )
            observation = await asyncio.to_thread(self.observe, record, thresholds)
            decision = decide(guard_rollout(record), observation, thresholds, self.clock())
            if decision.action is Action.HOLD:
                continue
            reason = decision.rollout.reason
            try:
                await asyncio.to_thread(
                    self.store.rollouts.advance_rollout,
                    record.model,
                    record.id,
                    decision.action.value,
                    ACTOR,
                    decision.figures,
                    reason,
                )
            except CatalogError as exc:
                log.warning("rollout %s of %s: %s", record.id, record.model, exc.message)
                continue
            log.info(
                "rollout of %s version %s: %s %s",
                record.model,
                record.candidate,
                decision.action.value,
                reason or f"(weight {decision.rollout.weight})",
            )
            await self.publish()
            done.append((record.model, decision.action))
        return done

    def observe(self, record: RolloutRecord, thresholds: Thresholds) -> Observation:
        window = thresholds.window_seconds
        # Only requests since the current step began count: an earlier step's traffic (or the
        # time before the rollout) would blur a breach that starts now.
        since_step = max(self.clock() - record.step_started_at.timestamp(), 1.0)
        seconds = min(window, since_step) if record.step_index > 0 else window
        candidate = _stats(self.stats.window(record.model, record.candidate, seconds))
        baseline = WindowStats()
        if record.baseline is not None:
            baseline = _stats(self.stats.window(record.model, record.baseline, window))
        if baseline.requests >= max(thresholds.min_requests, 1):
            self._baseline_seen[record.id] = baseline
        else:
            baseline = self._baseline_seen.get(record.id, baseline)
        quality = self._quality(record, thresholds)
        return Observation(candidate, baseline, *quality)

    def _quality(
        self, record: RolloutRecord, thresholds: Thresholds
    ) -> tuple[float | None, float | None, int, int]:
        metric = thresholds.quality_metric
        if not metric or self.feedback is None or record.baseline is None:
            return None, None, 0, 0
        per_version = self.feedback.metrics(record.model, thresholds.window_seconds)
        cand = per_version.get(record.candidate, {})
        base = per_version.get(record.baseline, {})
        return (
            cand.get("metrics", {}).get(metric),
            base.get("metrics", {}).get(metric),
            int(cand.get("feedback", 0)),
            int(base.get("feedback", 0)),
        )
