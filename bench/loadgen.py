"""The compiled load generators: ``wrk`` (REST, Lua body) and ``h2load`` (gRPC), and their parsers.

Both run closed-loop with one thread and N connections, one request in flight per connection, so
"N clients" means the same on both protocols. Latency percentiles come from each tool's own
per-request record: wrk's histogram read in the Lua ``done`` hook, h2load's ``--log-file`` (one
line per request of the measured phase: start time, HTTP status, duration in microseconds).
h2load sees HTTP statuses only; a gRPC error is HTTP 200 with ``grpc-status`` in the trailers, so
the runner checks the servers' own counters around every gRPC run.

h2load's timed mode (``-D``) ends with its calls in flight, which cancels them: Triton 2.51's gRPC
frontend crashes now and then on exactly that (server issues #7368, #8034; see
gateway/triton_grpc.py), and the Triton SIGSEGVs earlier ``make bench`` runs reported had that
crash's backtrace. A paired gRPC point (Triton direct and tfsgate alike) is therefore run by count
(``run_h2load_answered``): as many calls as the warm-up's rate fills the time with, each answered.
"""

from __future__ import annotations

import functools
import json
import math
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

_WRK_MARK = "BENCHJSON "
_HISTOGRAM_MARK = "BENCHHIST "

# wrk's Lua API: ``done(summary, latency, requests)`` runs once at the end; latency is in us.
# ``latency(i)`` is its i-th distinct value and that value's count (``#latency`` of them): the
# whole histogram, so several runs' percentiles can be read pooled (``pooled_wrk``).
_WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open("{body}", "rb"))
wrk.body = file:read("*a")
file:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean))
  local counts = {{}}
  for i = 1, #latency do
    local value, count = latency(i)
    counts[i] = string.format("%d:%d", value, count)
  end
  io.write('{histogram}', table.concat(counts, ","), "\\n")
end
"""


@dataclass(frozen=True)
class LoadResult:
    """One measured run of a load generator against one target."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "rps": self.rps}


def write_wrk_script(body: Path, script: Path) -> Path:
    """A Lua script that POSTs the bytes of ``body`` as JSON and prints a JSON summary."""
    script.write_text(
        _WRK_LUA.format(body=str(body.resolve()), mark=_WRK_MARK, histogram=_HISTOGRAM_MARK)
    )
    return script


def wrk_command(url: str, script: Path, clients: int, seconds: float) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{clients}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]


def parse_wrk(output: str) -> LoadResult:
    """The JSON line our Lua ``done`` hook printed."""
    for line in output.splitlines():
        if line.startswith(_WRK_MARK):
            data = json.loads(line[len(_WRK_MARK) :])
            # No completed request: wrk's histogram reads 0; say "no figure" instead.
            scale = 1000 if data["requests"] else math.nan
            return LoadResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                errors=int(data["status_errors"]) + int(data["socket_errors"]),
                p50_ms=data["p50_us"] / scale,
                p95_ms=data["p95_us"] / scale,
                p99_ms=data["p99_us"] / scale,
            )
    raise ValueError(f"no wrk summary in output:\n{output[-2000:]}")


def wrk_histogram(output: str) -> dict[int, int]:
    """The latencies our Lua ``done`` hook printed: us -> how many requests took that long."""
    for line in output.splitlines():
        if line.startswith(_HISTOGRAM_MARK):
            pairs = (item.split(":") for item in line[len(_HISTOGRAM_MARK) :].split(",") if item)
            return {int(value): int(count) for value, count in pairs}
    raise ValueError(f"no wrk histogram in output:\n{output[-2000:]}")


def histogram_percentile(histogram: dict[int, int], p: float) -> float:
    """wrk's own percentile (stats_percentile: the value at rank round(p% of n + 0.5), C's
    round: halves up)."""
    total = sum(histogram.values())
    rank = math.floor(p / 100 * total + 0.5 + 0.5)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return math.nan


def pooled_wrk(outputs: list[str]) -> LoadResult:
    """Several wrk runs as one: requests, time and errors summed, percentiles over every
    request of all of them (their histograms merged), not an average of each run's."""
    runs = [parse_wrk(output) for output in outputs]
    merged: dict[int, int] = {}
    for output in outputs:
        for value, count in wrk_histogram(output).items():
            merged[value] = merged.get(value, 0) + count
    scale = 1000 if merged else math.nan
    return LoadResult(
        requests=sum(r.requests for r in runs),
        seconds=sum(r.seconds for r in runs),
        errors=sum(r.errors for r in runs),
        p50_ms=histogram_percentile(merged, 50) / scale,
        p95_ms=histogram_percentile(merged, 95) / scale,
        p99_ms=histogram_percentile(merged, 99) / scale,
    )


def h2load_command(
    url: str,
    body: Path,
    clients: int,
    seconds: float,
    log_file: Path,
    count: int = 0,
    http1: bool = False,
) -> list[str]:
    """gRPC over h2load: a POST of the framed message with gRPC's headers, one stream each;
    for ``seconds``, or ``count`` calls when given. ``http1``: REST instead, POSTs of a JSON
    body over HTTP/1.1 (calls by count, which wrk cannot make)."""
    headers = (
        ["--h1", "-H", "content-type: application/json"]
        if http1
        else ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    )
    return [
        "h2load",
        "-t1",
        f"-c{clients}",
        "-m1",
        f"-n{count}" if count else f"-D{max(1, round(seconds))}",
        "-d",
        str(body),
        *headers,
        f"--log-file={log_file}",
        url,
    ]


# h2load states the run's time in the unit that suits it: "1.25s", "32.55ms", "850.10us".
_H2_FINISHED = re.compile(r"finished in ([\d.]+)(s|ms|us), ")
_H2_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_H2_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout"
)
_H2_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (as wrk's histogram reports), of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def h2load_errors(output: str) -> int:
    """Calls h2load counts as failed, errored or timed out, and answers other than 2xx."""
    requests = _H2_REQUESTS.search(output)
    statuses = _H2_STATUS.search(output)
    if requests is None or statuses is None:
        raise ValueError(f"no h2load summary in output:\n{output[-2000:]}")
    failed = int(requests.group(5)) + int(requests.group(6)) + int(requests.group(7))
    return failed + sum(int(statuses.group(i)) for i in (2, 3, 4))


def h2load_durations(log_text: str) -> list[float]:
    """Each request's time in ms, from h2load's log (start, status, duration in us)."""
    durations: list[float] = []
    for line in log_text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            durations.append(int(fields[2]) / 1000)
    return durations


def _h2load_result(errors: int, durations: list[float], seconds: float) -> LoadResult:
    durations.sort()
    return LoadResult(
        requests=len(durations),
        seconds=seconds,
        errors=errors,
        p50_ms=percentile(durations, 0.50),
        p95_ms=percentile(durations, 0.95),
        p99_ms=percentile(durations, 0.99),
    )


def parse_h2load(output: str, log_text: str, seconds: float) -> LoadResult:
    """h2load's summary for errors, its per-request log (one line per request) for latency."""
    return _h2load_result(h2load_errors(output), h2load_durations(log_text), seconds)


@dataclass(frozen=True)
class Window:
    """One run of a load generator kept whole (its output, and h2load's per-request log), so
    that several can be read as one (``pooled``)."""

    tool: str  # wrk or h2load
    output: str
    log_text: str = ""
    seconds: float = 0.0  # h2load's own time (wrk states its own in the output)

    @functools.cached_property
    def result(self) -> LoadResult:
        if self.tool == "wrk":
            return parse_wrk(self.output)
        return parse_h2load(self.output, self.log_text, self.seconds)


def pooled(windows: list[Window]) -> LoadResult:
    """Several runs of one tool as one: requests, time and errors summed, percentiles over every
    request of all of them."""
    if windows[0].tool == "wrk":
        return pooled_wrk([window.output for window in windows])
    durations = [d for window in windows for d in h2load_durations(window.log_text)]
    errors = sum(h2load_errors(window.output) for window in windows)
    return _h2load_result(errors, durations, sum(window.seconds for window in windows))


def run(command: list[str], timeout: float) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{command[0]} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout


def run_wrk(url: str, script: Path, clients: int, seconds: float) -> LoadResult:
    return wrk_window(url, script, clients, seconds).result


def wrk_window(url: str, script: Path, clients: int, seconds: float) -> Window:
    return Window("wrk", run(wrk_command(url, script, clients, seconds), timeout=seconds + 60))


def run_h2load(url: str, body: Path, clients: int, seconds: float, log_file: Path) -> LoadResult:
    log_file.unlink(missing_ok=True)
    command = h2load_command(url, body, clients, seconds, log_file)
    output = run(command, timeout=seconds + 60)
    return parse_h2load(output, log_file.read_text(), float(max(1, round(seconds))))


def h2load_seconds(output: str) -> float:
    """The run's time h2load states: its first connection to its last answer."""
    finished = _H2_FINISHED.search(output)
    if finished is None:
        raise ValueError(f"no h2load summary in output:\n{output[-2000:]}")
    return float(finished.group(1)) * _H2_UNITS[finished.group(2)]


def calls_for(seconds: float, rate: float, clients: int) -> int:
    """The count that fills ``seconds`` at ``rate`` calls a second (at least 20 per client)."""
    return max(20 * clients, round(rate * seconds))


def run_h2load_answered(
    url: str, body: Path, clients: int, seconds: float, log_file: Path, rate: float = 0.0
) -> LoadResult:
    """About ``seconds`` of calls by count (``run_h2load_counted``) at ``rate`` calls a second,
    else at the rate of a first run of 20 calls per client."""
    return h2load_answered_window(url, body, clients, seconds, log_file, rate).result


def h2load_answered_window(
    url: str, body: Path, clients: int, seconds: float, log_file: Path, rate: float = 0.0
) -> Window:
    if not rate:
        rate = run_h2load_counted(url, body, clients, 20 * clients, log_file).rps
    count = calls_for(seconds, rate, clients)
    return h2load_counted_window(url, body, clients, count, log_file, timeout=10 * seconds + 60)


def run_h2load_counted(
    url: str,
    body: Path,
    clients: int,
    count: int,
    log_file: Path,
    timeout: float = 300,
    http1: bool = False,
) -> LoadResult:
    """``count`` calls, each answered before h2load ends (nothing is cancelled); the run's time
    is h2load's own, from its first connection to its last answer."""
    return h2load_counted_window(url, body, clients, count, log_file, timeout, http1).result


def h2load_counted_window(
    url: str,
    body: Path,
    clients: int,
    count: int,
    log_file: Path,
    timeout: float = 300,
    http1: bool = False,
) -> Window:
    log_file.unlink(missing_ok=True)
    command = h2load_command(url, body, clients, 0, log_file, count, http1)
    output = run(command, timeout=timeout)
    return Window("h2load", output, log_file.read_text(), h2load_seconds(output))
