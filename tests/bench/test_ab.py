"""bench/ab.py: its summary line (medians per side, their ratio, the rounds B came out lower) and
its load points."""

from __future__ import annotations

import json
import time

import httpx

from bench.ab import Point, case_of, median_line, points_of
from bench.sections.rollout import spread_cycles


def test_median_line_reads_medians_ratio_and_rounds() -> None:
    a = Point([100, 120, 110], [0.5, 0.6, 0.55], [1000, 900, 950], [2.0, 3.0, 2.5])
    b = Point([90, 121, 99], [0.4, 0.5, 0.45], [1100, 1000, 1050], [1.5, 1.9, 1.7])
    line = median_line("rest 16 clients", a, b)
    assert line == (
        "rest 16 clients: CPU 110 -> 99 us/req (0.90x, lower in 2/3 rounds); p50 0.550 -> 0.450"
        " ms; p99 2.500 -> 1.700 ms; 950 -> 1050 req/s"
    )


def test_cases_name_the_bench_models() -> None:
    assert case_of("half_plus_two", 0).model == "half_plus_two"
    assert case_of("mlp", 0).array.shape == (1, 1024)
    assert case_of("scale", 16384).array.shape == (1, 16384)


def test_points_take_each_load_at_each_client_count_and_the_admin_calls_once() -> None:
    assert points_of("rest,grpc", "1,16") == [("rest", 1), ("grpc", 1), ("rest", 16), ("grpc", 16)]
    assert points_of("admin,rest", "1,16") == [("rest", 1), ("rest", 16), ("admin", 1)]
    assert points_of("admin", "1,16") == [("admin", 1)]


def test_cycles_alternate_promote_and_rollback_spread_over_the_run() -> None:
    """The rollout section's and the A/B's ``rollout`` kind's admin calls, against a canned API
    (a pure unit test): pairs in order, a refused call counted and said, spread over the run."""
    calls: list[tuple[float, str, dict[str, object]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append((time.monotonic(), request.url.path, json.loads(request.content)))
        return httpx.Response(409 if len(calls) == 4 else 200, text="lost a race")

    said: list[str] = []
    began = time.monotonic()
    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        times, failures = spread_cycles(
            client, "http://admin/v1/admin/models/m", 3, 3.0, said.append
        )
    assert [(path.rsplit("/", 1)[1], body) for _, path, body in calls] == [
        ("promote", {"version": 2}),
        ("rollback", {}),
    ] * 3
    assert len(times) == 6 and failures == 1
    assert said == ["cycle 1: rollback answered 409 lost a race"]
    # Evenly spaced from 0.5 s in: a call every half interval ((3 - 0.5) / 3 s), the last
    # rollback half an interval before the run's end.
    offsets = [at - began for at, _, _ in calls]
    expected = [0.5 + k * (2.5 / 3) / 2 for k in range(6)]
    assert all(e <= o < e + 0.1 for o, e in zip(offsets, expected, strict=True)), offsets
