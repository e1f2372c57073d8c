"""A paired gRPC point ends with every call answered: h2load's timed mode ended with calls in
flight, which cancelled them, and Triton 2.51's gRPC frontend crashes now and then on exactly
that (server issues #7368, #8034). Real serve, real Triton, real h2load."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import loadgen
from tests.support.bench_serve import half_plus_two_bench

pytestmark = [pytest.mark.triton, pytest.mark.tensorflow]

CANNED = """finished in 1.25s, 4000.00 req/s, 1.00MB/s
requests: 5000 total, 5000 started, 5000 done, 5000 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 5000 2xx, 0 3xx, 0 4xx, 0 5xx
"""


def test_a_counted_run_asks_for_its_count_and_takes_h2loads_time(tmp_path: Path) -> None:
    command = loadgen.h2load_command("http://h/p", tmp_path / "b", 4, 8, tmp_path / "l", 5000)
    assert "-n5000" in command and not any(part.startswith("-D") for part in command)
    assert loadgen.calls_for(8, 1000.0, 4) == 8000
    assert loadgen.calls_for(8, 0.5, 4) == 80  # at least 20 a client
    assert loadgen.h2load_seconds(CANNED) == 1.25
    assert loadgen.h2load_seconds(CANNED.replace("1.25s", "32.55ms")) == pytest.approx(0.03255)
    assert loadgen.h2load_seconds(CANNED.replace("1.25s", "850.5us")) == pytest.approx(850.5e-6)
    log = "".join(f"1700000{i}\t200\t250\n" for i in range(5000))
    assert loadgen.parse_h2load(CANNED, log, loadgen.h2load_seconds(CANNED)).rps == 4000


def test_h2load_windows_pool_their_requests_errors_and_time() -> None:
    fast = "".join(f"1700000{i}\t200\t100\n" for i in range(90))
    slow = "".join(f"1700001{i}\t200\t5000\n" for i in range(10))
    erring = CANNED.replace("0 failed", "3 failed").replace("0 4xx", "2 4xx")
    pooled = loadgen.pooled(
        [loadgen.Window("h2load", CANNED, fast, 1.0), loadgen.Window("h2load", erring, slow, 0.5)]
    )
    assert (pooled.requests, pooled.errors, pooled.seconds) == (100, 5, 1.5)
    # Percentiles over the 100 requests together: the slow window's ten are the top tenth.
    assert (pooled.p50_ms, pooled.p95_ms, pooled.p99_ms) == (0.1, 5.0, 5.0)


def test_grpc_points_cancel_nothing(half_plus_two: Path, tmp_path: Path) -> None:
    with half_plus_two_bench(half_plus_two, tmp_path, "h2load") as (bench, _, case, bodies):
        point = bench.pair(case, bodies, "grpc", 16, bench.plan.seconds)
        for target in ("triton", "tfsgate"):
            measured = point[target]
            assert measured["requests"] > 100 and measured["errors"] == 0
            # Triton's CANCELED failures and the gateway's CANCELLED answers, counted around the
            # run: none, as every call was answered before h2load ended.
            assert measured["cancelled"] == 0 and measured["server_errors"] == 0
            # The counts filled about the point's time (2 windows of 1 s) at the last run's rate.
            assert 0.5 < measured["seconds"] < 8
        assert (
            "-n<calls for 1 s at the rate of the run before>"
            in bench.results["commands"]["grpc triton"]
        )
