"""Shadow traffic: a share of a model's requests also goes to a candidate version, off the path.

The primary answers the caller as if no shadow existed: the copy is made only after the primary's
answer is in hand, queued for a background task, and never waited for. The queue is
bounded; past the bound a copy is dropped and counted. Each shadow answer is compared with the
primary's (``gateway.shadow_compare``) and the result goes to Prometheus and to a
per-(model, primary version, shadow version) summary the admin API shows. When predictions are
recorded for feedback, both answers are recorded under the request's id, so feedback scores the
shadow version on exactly the primary's traffic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from gateway.prediction_log import LogEntry, PredictionLogger, predict_record
from gateway.shadow_compare import compare_outputs
from gateway.types import ServedSpec, Tensors
from tfsgate.core.observations import ShadowReport, ShadowSummary
from tfsgate.core.routing_table import ModelRoute, ShadowRoute, Target
from tfsgate.core.status import Code, ServingError

log = logging.getLogger(__name__)

SHADOW_REQUESTS = Counter(
    "tfsgate_shadow_requests",
    "Shadow copies by model, shadow version and TF code",
    ["model", "version", "code"],
)
SHADOW_LATENCY = Histogram(
    "tfsgate_shadow_duration_seconds",
    "Shadow version latency",
    ["model", "version"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
SHADOW_DIFF = Histogram(
    "tfsgate_shadow_abs_diff",
    "Per request: largest |shadow - primary| over all outputs",
    ["model", "version"],
    buckets=(1e-6, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0),
)
SHADOW_MAX_DIFF = Gauge(
    "tfsgate_shadow_max_abs_diff", "Largest |shadow - primary| seen", ["model", "version"]
)
SHADOW_ROWS = Counter("tfsgate_shadow_rows", "Rows compared", ["model", "version"])
SHADOW_ROWS_BEYOND = Counter(
    "tfsgate_shadow_rows_beyond_tolerance",
    "Rows with an output beyond the tolerance",
    ["model", "version"],
)
SHADOW_TOP_CHANGED = Counter(
    "tfsgate_shadow_top_class_changed",
    "Classification rows whose top class changed",
    ["model", "version"],
)
SHADOW_DROPPED = Counter(
    "tfsgate_shadow_dropped", "Shadow copies not sent: too many in flight", ["model"]
)

# The data plane's Triton call: (target, inputs, output filter, timeout) -> outputs.
Infer = Callable[[Target, Tensors, Sequence[str], float | None], Awaitable[Tensors]]
SHADOW_TIMEOUT_SECONDS = 30.0


class _Series:
    """The Prometheus children of one (model, shadow version)."""

    def __init__(self, model: str, version: str) -> None:
        self.ok = SHADOW_REQUESTS.labels(model, version, "OK")
        self.latency = SHADOW_LATENCY.labels(model, version)
        self.diff = SHADOW_DIFF.labels(model, version)
        self.max_diff = SHADOW_MAX_DIFF.labels(model, version)
        self.rows = SHADOW_ROWS.labels(model, version)
        self.rows_beyond = SHADOW_ROWS_BEYOND.labels(model, version)
        self.top_changed = SHADOW_TOP_CHANGED.labels(model, version)


@dataclass(frozen=True)
class Call:
    """One Triton call the primary made, with its answer: the shadow repeats it."""

    primary: Target
    inputs: Tensors
    output_filter: tuple[str, ...]
    outputs: Tensors


@dataclass(frozen=True)
class Copy:
    """What a shadow copy needs from the primary request: its calls (one, or one per task of a
    MultiInference) and, for the summary and feedback, its latency and request id."""

    route: ModelRoute
    shadow: ShadowRoute
    calls: tuple[Call, ...]
    primary_seconds: float
    request_id: str

    @property
    def primary(self) -> Target:
        return self.calls[0].primary


class ShadowRunner:
    """Copies wait in a bounded queue taken by one background task, a round at a time.

    Every ``round_seconds`` the task takes the queued copies (up to ``round_size``) and sends
    them together: copies for one batching model coalesce into one Triton call
    (``gateway/coalescer.py``) as the primaries do, instead of one call each (10 % shadow sent
    copy by copy cost a third of the throughput). So shadow traffic is at most one round of
    calls per ``round_seconds`` beside the primaries however bursty the load, the rounds wait
    while requests are served (no one waits for a shadow answer), and a copy that finds the
    queue full is dropped and counted. The task ends when the queue is empty: nothing runs
    while no model is shadowed.
    """

    def __init__(
        self,
        infer: Infer,
        logger: PredictionLogger | None = None,
        *,
        round_seconds: float = 0.02,
        round_size: int = 32,
        max_queued: int = 128,
    ) -> None:
        self._infer = infer
        self.logger = logger
        self.round_seconds = round_seconds
        self.round_size = round_size
        self._working = False
        self.max_queued = max_queued
        self._queue: deque[Copy] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self.summaries: dict[tuple[str, int, int], ShadowSummary] = {}
        self._series: dict[tuple[str, str], _Series] = {}
        self._changed: set[tuple[str, int, int]] = set()

    def summary(self, model: str) -> list[dict[str, object]]:
        """Every (primary, shadow) pair this process saw for ``model``."""
        return [
            {"primary_version": p, "shadow_version": s, **summary.as_json()}
            for (m, p, s), summary in sorted(self.summaries.items())
            if m == model
        ]

    def changed_reports(self) -> list[ShadowReport]:
        """Copies of the totals changed since the last call (``gateway/observations.py``)."""
        changed, self._changed = self._changed, set()
        return [
            ShadowReport(m, p, s, ShadowSummary.from_totals(self.summaries[(m, p, s)].totals()))
            for m, p, s in sorted(changed)
        ]

    def mark_changed(self, reports: Sequence[ShadowReport]) -> None:
        self._changed.update((r.model, r.primary_version, r.shadow_version) for r in reports)

    def _summary(self, copy: Copy) -> ShadowSummary:
        """The pair's totals, marked changed (call it when they change)."""
        key = (copy.route.name, copy.primary.version.version, copy.shadow.version)
        self._changed.add(key)
        found = self.summaries.get(key)
        if found is None:
            found = self.summaries[key] = ShadowSummary()
        return found

    def send(self, copy: Copy) -> None:
        """Queue a copy (the request path: an append, and a task when none is running)."""
        if copy.shadow.version == copy.primary.version.version:
            return  # the primary already is the shadow version: nothing to compare
        if len(self._queue) >= self.max_queued:
            self._summary(copy).dropped += 1
            SHADOW_DROPPED.labels(copy.route.name).inc()
            return
        self._queue.append(copy)
        if not self._working:
            self._working = True
            task = asyncio.get_running_loop().create_task(self._work())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _work(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(self.round_seconds)  # a round gathers; requests go first
                count = min(len(self._queue), self.round_size)
                batch = [self._queue.popleft() for _ in range(count)]
                await asyncio.gather(*(self._run(copy) for copy in batch))
        finally:
            self._working = False

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued copy is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - time.monotonic())

    async def _run(self, copy: Copy) -> None:
        model, version = copy.route.name, str(copy.shadow.version)
        started = time.perf_counter()
        try:
            answers = []
            for call in copy.calls:
                target = shadow_target(copy.route, copy.shadow, call.primary)
                answers.append(
                    await self._infer(
                        target, call.inputs, call.output_filter, SHADOW_TIMEOUT_SECONDS
                    )
                )
        except ServingError as exc:
            self._summary(copy).add_error(exc.code.name)
            SHADOW_REQUESTS.labels(model, version, exc.code.name).inc()
            return
        except Exception:  # noqa: BLE001 - a shadow must never take anything else down
            log.exception("shadow copy to %s version %s failed", model, version)
            self._summary(copy).add_error("INTERNAL")
            SHADOW_REQUESTS.labels(model, version, "INTERNAL").inc()
            return
        seconds = time.perf_counter() - started
        comparison = compare_outputs(
            _joined([c.outputs for c in copy.calls], copy.calls),
            _joined(answers, copy.calls),
            copy.shadow.tolerance,
        )
        summary = self._summary(copy)
        summary.add(comparison, copy.primary_seconds, seconds)
        series = self._series.get((model, version))
        if series is None:  # labelled children looked up once per (model, version)
            series = self._series[(model, version)] = _Series(model, version)
        series.ok.inc()
        series.latency.observe(seconds)
        series.diff.observe(comparison.max_abs_diff)
        series.max_diff.set(summary.max_abs_diff)
        series.rows.inc(comparison.rows)
        series.rows_beyond.inc(comparison.rows_beyond_tolerance)
        series.top_changed.inc(comparison.top_class_changed)
        if self.logger is not None and self.logger.sink is not None:
            self._record(copy, answers[0])

    def _record(self, copy: Copy, outputs: Tensors) -> None:
        """Both versions' answers to the first call, under the request id (for feedback)."""
        assert self.logger is not None
        signature = copy.primary.signature.name
        for spec, answer in (
            (
                ServedSpec(copy.route.name, copy.primary.version.version, signature),
                copy.calls[0].outputs,
            ),
            (ServedSpec(copy.route.name, copy.shadow.version, signature), outputs),
        ):
            record = predict_record(spec, copy.request_id, answer)
            if record is not None:
                self.logger.submit(LogEntry("record", spec, copy.request_id, None, None, record))


def _joined(answers: Sequence[Tensors], calls: Sequence[Call]) -> Tensors:
    """One call's outputs as they are; several calls' outputs keyed ``signature/output``."""
    if len(answers) == 1:
        return answers[0]
    return {
        f"{call.primary.signature.name}/{key}": array
        for call, outputs in zip(calls, answers, strict=True)
        for key, array in outputs.items()
    }


def shadow_target(route: ModelRoute, shadow: ShadowRoute, primary: Target) -> Target:
    """The primary's signature on the shadow version."""
    version = route.versions.get(shadow.version)
    if version is None or not version.available:
        raise ServingError(Code.UNAVAILABLE, f"shadow version {shadow.version} is not available")
    name = primary.signature.name
    target = version.target(route.name, name)
    if target is None:
        raise ServingError(
            Code.FAILED_PRECONDITION, f'shadow version {shadow.version} has no signature "{name}"'
        )
    return target
