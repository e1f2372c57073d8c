"""What a gateway reports: completed seconds once each, shadow totals when they changed, and
totals again after a failed report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from gateway.observations import ObservationReporter
from gateway.shadow import Call, Copy, ShadowRunner
from gateway.types import Tensors
from gateway.version_stats import VersionStats
from tfsgate.core.observations import ShadowReport, VersionSecond
from tfsgate.core.routing_table import ModelRoute, ShadowRoute, Target, VersionRoute
from tfsgate.core.signatures import SignatureSpec, TensorSpec


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.reports: list[tuple[str, list[VersionSecond], list[ShadowReport]]] = []

    def report(
        self, gateway: str, seconds: Sequence[VersionSecond], shadows: Sequence[ShadowReport]
    ) -> None:
        if self.fail:
            raise RuntimeError("catalog down")
        self.reports.append((gateway, list(seconds), list(shadows)))


async def _infer(*_args: Any) -> Any:
    raise AssertionError("not called")


def test_completed_seconds_are_reported_once() -> None:
    stats, shadows, sink = VersionStats(), ShadowRunner(_infer), Sink()
    reporter = ObservationReporter(stats, shadows, sink, gateway="gw")
    now = int(time.time())
    for _ in range(3):
        stats.record("m", 1, 0.002, error=False)
    stats.record("m", 2, 0.5, error=True)
    assert reporter.collect(now) == ([], [])  # the current second is still being counted
    seconds, _ = reporter.collect(now + 1)
    by_version = {s.version: s for s in seconds}
    assert (by_version[1].requests, by_version[1].errors, by_version[1].second) == (3, 0, now)
    assert (by_version[2].requests, by_version[2].errors) == (1, 1)
    assert sum(by_version[1].histogram.values()) == 3
    assert reporter.collect(now + 2) == ([], [])


SIGNATURE = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    {"x": TensorSpec("x", "x:0", "DT_FLOAT", (-1, 1))},
    {"y": TensorSpec("y", "y:0", "DT_FLOAT", (-1, 1))},
)


def _version(number: int) -> VersionRoute:
    return VersionRoute(
        number,
        "AVAILABLE",
        signatures={"serving_default": SIGNATURE},
        triton_models={"serving_default": "m__serving_default"},
    )


async def _plus_one(target: Target, inputs: Tensors, *_args: Any) -> Tensors:
    """The shadow version's answer: its version number added (a stand-in for Triton)."""
    return {"y": inputs["x"] + target.version.version}


async def test_shadow_totals_are_reported_when_changed_and_again_after_a_failure() -> None:
    stats, shadows = VersionStats(), ShadowRunner(_plus_one)
    route = ModelRoute("m", {1: _version(1), 2: _version(2)}, shadow=ShadowRoute(2, 100.0, 0.5))
    primary = Target("m", route.versions[1], SIGNATURE, "m__serving_default", False)
    x = np.array([[1.0], [2.0]], dtype=np.float32)
    call = Call(primary, {"x": x}, (), {"y": x + 1})
    assert route.shadow is not None
    shadows.send(Copy(route, route.shadow, (call,), 0.001, "r1"))
    await shadows.drain()
    failing = Sink(fail=True)
    reporter = ObservationReporter(stats, shadows, failing, gateway="gw")
    with pytest.raises(RuntimeError):
        await reporter.report_once()
    working = Sink()
    reporter.sink = working
    await reporter.report_once()
    ((gateway, _, (report,)),) = working.reports
    assert gateway == "gw" and (report.model, report.primary_version, report.shadow_version) == (
        "m",
        1,
        2,
    )
    assert report.summary.requests == 1 and report.summary.max_abs_diff == 1.0
    await reporter.report_once()  # nothing changed: nothing sent
    assert len(working.reports) == 1


async def test_shadow_copies_queue_for_a_bounded_number_of_workers() -> None:
    """A burst of copies: sent in rounds of at most ``round_size``, the rest queued up to the
    bound, the excess dropped and counted."""
    running, most = 0, 0

    async def slow(target: Target, inputs: Tensors, *_args: Any) -> Tensors:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return {"y": inputs["x"]}

    shadows = ShadowRunner(slow, round_seconds=0.001, round_size=2, max_queued=3)
    route = ModelRoute("m", {1: _version(1), 2: _version(2)}, shadow=ShadowRoute(2, 100.0, 0.5))
    primary = Target("m", route.versions[1], SIGNATURE, "m__serving_default", False)
    x = np.array([[1.0]], dtype=np.float32)
    assert route.shadow is not None
    for i in range(10):
        call = Call(primary, {"x": x}, (), {"y": x})
        shadows.send(Copy(route, route.shadow, (call,), 0.001, f"r{i}"))
    await shadows.drain()
    (summary,) = shadows.summary("m")
    assert (summary["requests"], summary["dropped"], summary["max_abs_diff"]) == (3, 7, 0.0)
    assert most == 2
