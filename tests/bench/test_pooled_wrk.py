"""Several wrk runs read as one (``bench.loadgen.pooled_wrk``): the rollout section alternates
steady windows and windows with promote/rollback cycles, and each side's percentiles are over
every request of its windows, from the histograms wrk's Lua hook prints."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import loadgen


def canned(requests: int, p99_us: int, histogram: dict[int, int]) -> str:
    counts = ",".join(f"{value}:{count}" for value, count in sorted(histogram.items()))
    return (
        f'BENCHJSON {{"requests":{requests},"duration_us":5000000,"status_errors":0,'
        f'"socket_errors":1,"p50_us":1000,"p95_us":1000,"p99_us":{p99_us},"max_us":9000,'
        '"mean_us":1000.0}\n'
        f"BENCHHIST {counts}\n"
    )


def test_percentiles_are_over_every_request_of_the_runs() -> None:
    """A quiet run (1,000 requests at 1 ms) and one with a 2 % tail at 9 ms: pooled, the tail is
    1 % of the requests, so the p99 is at its edge; neither run's p99 nor their mean."""
    quiet = canned(1000, 1000, {1000: 1000})
    tail = canned(1000, 9000, {1000: 980, 9000: 20})
    pooled = loadgen.pooled_wrk([quiet, tail])
    assert (pooled.requests, pooled.seconds, pooled.errors) == (2000, 10.0, 2)
    assert pooled.p50_ms == 1.0
    # rank round(0.99 * 2000 + 0.5) = 1981: the 1,981st request is the first of the tail
    assert pooled.p99_ms == 9.0
    assert loadgen.pooled_wrk([quiet, canned(1000, 9000, {1000: 990, 9000: 10})]).p99_ms == 1.0


def test_wrks_own_percentile_rule() -> None:
    """wrk's stats_percentile: rank round(p/100 * n + 0.5) with C's round, halves up."""
    histogram = {100: 1, 200: 1, 300: 1, 400: 1}
    assert loadgen.histogram_percentile(histogram, 50) == 300  # round(2.5) = 3 in C
    assert loadgen.histogram_percentile(histogram, 25) == 200  # round(1.5) = 2
    assert loadgen.histogram_percentile(histogram, 99) == 400


def test_a_run_without_its_histogram_is_an_error() -> None:
    with pytest.raises(ValueError, match="no wrk histogram"):
        loadgen.wrk_histogram(canned(1, 1, {1: 1}).splitlines()[0])


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer's body waits ~40 ms for a delayed ACK

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk's connections reset when it stops


@pytest.fixture
def server() -> Iterator[str]:
    httpd = _Server(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (bench/setup.sh)")
def test_real_wrk_prints_its_whole_histogram(server: str, tmp_path: Path) -> None:
    """The Lua hook's histogram is wrk's whole latency record (its percentiles read back as
    wrk's own), and two runs pool."""
    body = tmp_path / "body.json"
    body.write_text('{"instances": [1.0]}')
    script = loadgen.write_wrk_script(body, tmp_path / "body.lua")
    outputs = [loadgen.run(loadgen.wrk_command(server, script, 2, 1), 60) for _ in range(2)]
    runs = [loadgen.parse_wrk(output) for output in outputs]
    for run, output in zip(runs, outputs, strict=True):
        histogram = loadgen.wrk_histogram(output)
        assert run.requests > 50
        # wrk's own latency record: its percentiles are wrk's (its latency count is kept
        # apart from its request count: 7,350 for 7,339 requests here, 7,333 for 7,160 in CI)
        for p, expected in ((50, run.p50_ms), (95, run.p95_ms), (99, run.p99_ms)):
            assert loadgen.histogram_percentile(histogram, p) / 1000 == expected
        assert sum(histogram.values()) >= run.requests * 0.9
    pooled = loadgen.pooled_wrk(outputs)
    assert pooled.requests == sum(r.requests for r in runs)
    assert min(r.p50_ms for r in runs) <= pooled.p50_ms <= max(r.p50_ms for r in runs)
