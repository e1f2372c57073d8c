"""``make bench`` outlives a Triton that dies or hangs mid-run: tritonserver 2.51 has died of
SIGSEGV, and hung in its SIGABRT handler after finding its heap corrupted, at 64-client points
here (the SIGSEGV was its gRPC frontend on calls h2load cancelled; gRPC points now go by count,
bench/loadgen.py). The serve restarts it on new ports; the benchmark waits for it, measures the
interrupted point again and the report lists the restart. Real serve, real Triton, real wrk."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from bench.report import render
from tests.support.bench_serve import half_plus_two_bench

pytestmark = [pytest.mark.triton, pytest.mark.tensorflow]


@pytest.mark.parametrize(
    ("sent", "ended"),
    [
        (signal.SIGSEGV, "signal 11 (SIGSEGV)"),
        # Stopped, it is alive to the OS and answers nothing, as the hung one was.
        (signal.SIGSTOP, "hung (3 health probes of 3 s unanswered)"),
    ],
)
def test_a_triton_that_ends_during_a_point_is_waited_for_and_the_point_measured_again(
    half_plus_two: Path, tmp_path: Path, sent: signal.Signals, ended: str
) -> None:
    with half_plus_two_bench(half_plus_two, tmp_path, "wrk") as (bench, serve, case, bodies):
        died = int(serve.endpoints["pid"])
        # Into the point's first window of Triton direct (after the two sides' 1 s warm-ups; the
        # windows last 1 s), or near it: wherever it lands, the pair is measured again.
        killer = threading.Timer(2.5, os.kill, (died, sent))
        killer.start()
        point = bench.pair(case, bodies, "rest", 4, bench.plan.seconds)
        killer.join()

        restarts = bench.results["triton_restarts"]
        assert [(r["point"], r["ended"]) for r in restarts] == [("rest, 4 clients", ended)]
        assert int(serve.endpoints["pid"]) not in (died, 0)
        for target in ("triton", "tfsgate"):  # the point again, whole, on the new Triton
            assert point[target]["requests"] > 100
            assert point[target]["errors"] == point[target]["server_errors"] == 0
        report = render(bench.results, {}, "bench", None)
        assert "### Triton restarts during this run" in report
        assert f"| rest, 4 clients | {ended} |" in report
