"""The benchmark's parsers and report writer on canned output (nothing timed, no servers)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import bench.run  # noqa: F401 - the harness imports (protos, clients) still resolve
from bench import loadgen, report

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:1234/v1/models/half_plus_two:predict
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  40.00ms   90.00%
  40000 requests in 8.00s, 5.00MB read
  Non-2xx or non-3xx responses: 3
BENCHJSON {"requests":40000,"duration_us":8000000,"status_errors":3,"socket_errors":1,\
"p50_us":2900,"p95_us":5100,"p99_us":9800,"max_us":40000,"mean_us":3100.0}
"""

H2LOAD_OUTPUT = """finished in 2.00s, 3.00 req/s, 1.00KB/s
requests: 6 total, 6 started, 6 done, 5 succeeded, 1 failed, 0 errored, 0 timeout
status codes: 5 2xx, 0 3xx, 0 4xx, 1 5xx
"""


def test_wrk_summary_from_lua_hook() -> None:
    result = loadgen.parse_wrk(WRK_OUTPUT)
    assert result.requests == 40000
    assert result.rps == pytest.approx(5000)
    assert result.errors == 4
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == (2.9, 5.1, 9.8)


def test_wrk_without_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="no wrk summary"):
        loadgen.parse_wrk("Running 8s test\n")


def test_h2load_latency_from_the_request_log() -> None:
    log = "".join(f"17000000{i}\t200\t{us}\n" for i, us in enumerate([900, 100, 500, 300, 700]))
    log += "170000009\t503\t2000\n"
    result = loadgen.parse_h2load(H2LOAD_OUTPUT, log, seconds=2.0)
    assert result.requests == 6
    assert result.rps == 3
    assert result.errors == 2  # one failed request, one 5xx status
    assert result.p50_ms == 0.5
    assert result.p99_ms == 2.0


def test_wrk_script_posts_the_body_file(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text("{}")
    script = loadgen.write_wrk_script(body, tmp_path / "body.lua").read_text()
    assert f'io.open("{body.resolve()}", "rb")' in script
    assert 'wrk.method = "POST"' in script
    assert "latency:percentile(99)" in script


def _point(rps: float, p50: float, p99: float, cpu: float = 0.0) -> dict[str, Any]:
    return {
        "rps": rps,
        "requests": int(rps * 8),
        "seconds": 8.0,
        "errors": 0,
        "server_errors": 0.0,
        "p50_ms": p50,
        "p95_ms": (p50 + p99) / 2,
        "p99_ms": p99,
        "gateway_cpu_us": cpu,
        "triton_cpu_us": 50.0,
    }


def _pair(clients: int, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    return {"clients": clients, "tfsgate": ours, "triton": theirs}


RESULTS: dict[str, Any] = {
    "started": "2026-12-01 21:00 UTC",
    "minutes": 14.2,
    "plan": {"quick": False, "seconds": 8, "payload_clients": 4},
    "machine": {"cpu": "test cpu", "cores": 2, "commit": "abc1234", "versions": {"wrk": "4.1"}},
    "commands": {"rest tfsgate": "wrk -t1 -c16 ..."},
    "sweep": {
        "rest": [
            _pair(1, _point(700, 1.40, 3.0, cpu=560), _point(1100, 0.80, 2.0)),
            _pair(16, _point(5000, 3.0, 20.0, cpu=150), _point(10000, 1.5, 5.0)),
            _pair(64, _point(9000, 7.0, 12.0, cpu=70), _point(10000, 6.0, 8.0)),
        ],
        "grpc": [
            _pair(1, _point(600, 1.6, 4.0, cpu=240), _point(1300, 0.75, 2.0)),
            _pair(16, _point(4000, 4.0, 30.0, cpu=119), _point(9000, 1.7, 6.0)),
            _pair(64, _point(4000, 16.0, 90.0, cpu=270), _point(15000, 4.0, 8.0)),
        ],
    },
    "mlp": {
        "clients": 32,
        "rest": _pair(32, _point(2700, 10, 80, cpu=300), _point(4700, 6, 11)),
        "grpc": _pair(32, _point(2500, 11, 85, cpu=330), _point(4600, 6, 12)),
        "naive": {**_point(1100, 28, 60), "server_cpu_us": 900.0},
        "rest_two_workers": {**_point(5600, 8, 40), "server_cpu_us": 420.0},
        "batching_off": {
            "rest": _pair(32, _point(1200, 25, 90, cpu=400), _point(1500, 20, 40)),
        },
    },
    "payload": [
        {
            "floats": 262144,
            "bytes": 1 << 20,
            "json_bytes": 5_000_000,
            "rest": _pair(4, _point(20, 190, 300, cpu=40000), _point(25, 150, 250)),
            "grpc": _pair(4, _point(90, 40, 60, cpu=9000), _point(200, 18, 30)),
        }
    ],
    "rollout": {
        "clients": 8,
        "cycles": 20,
        "steady": _point(3000, 2.0, 5.3),
        "during": _point(2900, 2.1, 16.8),
        "admin_failures": 0,
        "admin_p50_ms": 30.0,
        "admin_max_ms": 90.0,
    },
    "memory_end": {"rss_mb": 140.0, "peak_rss_mb": 180.0},
    "gateway_role_memory": [
        {"workers": 1, "serving": [{"rss_mb": 95.0, "peak_rss_mb": 120.0}], "supervisor": None},
        {
            "workers": 2,
            "serving": [
                {"rss_mb": 97.0, "peak_rss_mb": 110.0},
                {"rss_mb": 99.0, "peak_rss_mb": 160.0},
            ],
            "supervisor": {"rss_mb": 60.0, "peak_rss_mb": 60.0},
        },
    ],
    "cold_start": {"fresh_s": 9.5, "restart_s": 4.5},
}


def _verdicts(markdown: str) -> dict[str, str]:
    rows = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) >= 4 and cells[-1] in ("met", "**missed**", "not measured"):
            rows[cells[0]] = cells[-1]
    return rows


def test_targets_are_judged_on_the_figures() -> None:
    verdicts = _verdicts(report.render(RESULTS, {}, "Benchmarks", baseline=None))
    assert verdicts["gateway CPU per request, REST, 16 clients"] == "**missed**"  # 150 > 80
    assert verdicts["gateway CPU per request, gRPC, 16 clients"] == "met"  # 119 <= 120
    assert verdicts["gateway CPU per request, gRPC, 1 client"] == "met"  # 240 <= 250
    assert verdicts["added p50 at 1 client, REST (tfsgate - Triton)"] == "**missed**"  # 0.6 ms
    assert verdicts["throughput, REST, 64 clients (tfsgate / Triton)"] == "met"  # 0.9x
    assert verdicts["throughput, gRPC, 64 clients (tfsgate / Triton)"] == "**missed**"
    assert verdicts["p99 at 64 clients, REST (tfsgate / Triton)"] == "met"  # 1.5x
    assert verdicts["MLP at 32 clients, REST (tfsgate / naive FastAPI+TF)"] == "**missed**"
    two_workers = "MLP at 32 clients, REST, 2 gateway workers (tfsgate / naive FastAPI+TF)"
    assert verdicts[two_workers] == "met"  # 5600 / 1100 = 5.1x
    assert verdicts["p99 during promote/rollback cycles / steady p99"] == "**missed**"
    assert verdicts["gateway RSS after all runs (tfsgate serve process)"] == "met"
    assert verdicts["gateway peak RSS (VmHWM, tfsgate serve process)"] == "**missed**"
    # The largest serving process of either gateway run: 99 MB now, 160 MB at its peak.
    role = "per serving process (`tfsgate gateway` role"
    assert verdicts[f"gateway RSS {role}, after its runs)"] == "met"
    assert verdicts["gateway peak RSS per serving process (VmHWM, `tfsgate gateway` role)"] == (
        "**missed**"
    )
    assert verdicts["cold start: spawn -> first prediction, restart"] == "met"


def test_missing_sections_are_not_measured() -> None:
    partial = {k: v for k, v in RESULTS.items() if k not in ("mlp", "rollout")}
    verdicts = _verdicts(report.render(partial, {}, "Benchmarks", baseline=None))
    assert verdicts["MLP at 32 clients, REST (tfsgate / Triton HTTP)"] == "not measured"
    assert verdicts["p99 during promote/rollback cycles / steady p99"] == "not measured"


def test_baseline_column_and_tables() -> None:
    before = copy.deepcopy(RESULTS)
    before["cold_start"]["fresh_s"] = 12.0
    markdown = report.render(RESULTS, {"sweep_rps": "benchmarks/sweep_rps.png"}, "After", before)
    assert markdown.startswith("# After\n")
    assert "| target (issue 11, item 4) | goal | before | measured | verdict |" in markdown
    assert "| cold start: spawn -> first prediction, fresh home | <= 5 s | 12.00 s | 9.50 s |" in (
        markdown
    )
    # The REST sweep row at 16 clients: rates, ratio, latencies, CPU.
    assert "| 16 | 5000 | 10000 | 0.50x | 3.00 / 11.50 / 20.00 | 1.50 / 3.25 / 5.00 | 150 |" in (
        markdown
    )
    assert "![requests/s](benchmarks/sweep_rps.png)" in markdown
    assert "| naive FastAPI + TF REST | n/a | 1100 |" in markdown
    assert "| 900 (its process) |" in markdown
    assert "| tfsgate REST, `tfsgate gateway --gateway_workers=2` | on | 5600 |" in markdown
    assert "| 420 (both workers) |" in markdown
    assert (
        "| `tfsgate gateway --gateway_workers=2`, each serving process |"
        " 97 MB (peak 110 MB), 99 MB (peak 160 MB); supervisor 60 MB |"
    ) in markdown
    assert "| 262144 (1 MB) | REST (5 MB JSON) | 20 | 25 | 0.80x |" in markdown


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need the bench extra (make bench installs it)")
    out = tmp_path / "benchmarks.md"
    report.write(RESULTS, out, tmp_path / "benchmarks", "Benchmarks")
    made = sorted(p.name for p in (tmp_path / "benchmarks").iterdir())
    assert made == [
        "cpu_per_request.png",
        "mlp.png",
        "payload.png",
        "sweep_latency.png",
        "sweep_rps.png",
    ]
    assert all((tmp_path / "benchmarks" / name).read_bytes()[:4] == b"\x89PNG" for name in made)
    assert "![MLP](benchmarks/mlp.png)" in out.read_text()


COLLAPSED = """process 10:"python -m tfsgate.cli serve";thread (0x7f01);run (/usr/lib/python3.11/asyncio/base_events.py:640);_run_once (/usr/lib/python3.11/asyncio/base_events.py:1922);handle (/w/gateway/rest.py:120);dumps (/w/.venv/lib/python3.11/site-packages/orjson/__init__.py:3) 30
process 10:"python -m tfsgate.cli serve";thread (0x7f01);run (/usr/lib/python3.11/asyncio/base_events.py:640);_run_once (/usr/lib/python3.11/asyncio/base_events.py:1922) 50
process 10:"python -m tfsgate.cli serve";thread (0x7f01);run (/usr/lib/python3.11/asyncio/base_events.py:640);_run_once (/usr/lib/python3.11/asyncio/base_events.py:1922);handle (/w/gateway/rest.py:120) 20
process 10:"python -m tfsgate.cli serve";thread (0x7f01);run (/usr/lib/python3.11/asyncio/base_events.py:640);_run_once (/usr/lib/python3.11/asyncio/base_events.py:1884);EpollSelector.select (/usr/lib/python3.11/selectors.py:468) 300
process 10:"python -m tfsgate.cli serve";thread (0x7f02);_bootstrap (/usr/lib/python3.11/threading.py:1002);_worker (/usr/lib/python3.11/concurrent/futures/thread.py:81) 100
"""
# The same process on uvloop: the loop is C under the runner's frame.
COLLAPSED_UVLOOP = """process 10:"python -m tfsgate.cli serve";thread (0x7f01);run (/usr/lib/python3.11/asyncio/runners.py:190);Runner.run (/usr/lib/python3.11/asyncio/runners.py:118) 60
process 10:"python -m tfsgate.cli serve";thread (0x7f01);run (/usr/lib/python3.11/asyncio/runners.py:190);Runner.run (/usr/lib/python3.11/asyncio/runners.py:118);_write (/w/gateway/http_server.py:373) 30
process 10:"python -m tfsgate.cli serve";thread (0x7f01);run (/usr/lib/python3.11/asyncio/runners.py:190);Runner.run (/usr/lib/python3.11/asyncio/runners.py:118);handle (/w/gateway/rest.py:120) 10
"""


def test_pyspy_collapsed_stacks() -> None:
    from bench import pyspy

    profile = pyspy.parse_collapsed(COLLAPSED)
    assert profile.samples == 100  # the loop's select and the idle worker are waits
    assert profile.waiting == 0.8
    assert profile.by_package[0] == ("stdlib:asyncio", 0.5)
    assert dict(profile.by_package)["orjson"] == 0.3
    assert dict(profile.by_package)["gateway"] == 0.2
    assert dict(profile.by_function)["handle (gateway/rest.py)"] == 0.2
    assert dict(profile.inclusive)["handle (gateway/rest.py)"] == 0.5
    assert "run (asyncio/base_events.py)" not in dict(profile.inclusive)


def test_pyspy_uvloop_loop_counts_as_waiting() -> None:
    from bench import pyspy

    profile = pyspy.parse_collapsed(COLLAPSED_UVLOOP)
    assert (profile.samples, profile.waiting) == (40, 0.6)
    assert dict(profile.by_function) == {
        "_write (gateway/http_server.py)": 0.75,
        "handle (gateway/rest.py)": 0.25,
    }


def test_profile_section() -> None:
    results = {
        **RESULTS,
        "profile": {
            "rest": {
                "clients": 16,
                "rps": 5000.0,
                "samples": 100,
                "waiting": 0.25,
                "user_us": 90.0,
                "kernel_us": 20.0,
                "by_package": [["stdlib:asyncio", 0.5]],
                "by_function": [["handle (gateway/rest.py)", 0.2]],
                "inclusive": [["run (asyncio/base_events.py)", 1.0]],
            }
        },
    }
    markdown = report.render(results, {}, "Benchmarks", baseline=None)
    assert (
        "### REST: 100 samples at 5000 req/s, 25% of the time waiting or in the event loop's C code;"
        " CPU per request meanwhile (`/proc`): 90 us user space, 20 us kernel" in markdown
    )
    assert "| `handle (gateway/rest.py)` | 20.0% |" in markdown


def test_floors_section() -> None:
    floor = {**_point(3000, 0.3, 2.0), "kind": "grpc-aio", "clients": 16, "server_cpu_us": 290.0}
    markdown = report.render({**RESULTS, "floors": [floor]}, {}, "Benchmarks", baseline=None)
    assert "## Library floors: do-nothing servers under the same load" in markdown
    assert "| `grpc-aio` | 16 | 3000 | 0.30 / 1.15 / 2.00 | 290 | 0 |" in markdown


def test_missed_cpu_target_note_splits_user_and_kernel() -> None:
    from bench import diagnosis

    profile = {
        "clients": 16,
        "rps": 5000.0,
        "samples": 100,
        "waiting": 0.25,
        "user_us": 120.0,
        "kernel_us": 30.0,
        "by_package": [["gateway", 0.7]],
        "by_function": [],
        "inclusive": [],
    }
    notes = diagnosis.notes({**RESULTS, "profile": {"rest": profile}})
    rest_16 = next(n for n in notes if n.startswith("REST at 16 clients: 150 us against 80 us."))
    assert (
        "During the profiled run the gateway's CPU per request was 120 us in user space (the"
        " interpreter running tfsgate's Python and its C extensions, 80% of it) and 30 us in the"
        " kernel (its socket calls)." in rest_16
    )


def test_missed_rollout_target_note_shows_both_windows_and_the_admin_cost() -> None:
    from bench import diagnosis

    rollout = RESULTS["rollout"]
    beside = {
        **rollout,
        "steady": _point(3000, 2.0, 5.0),
        "during": _point(3000, 2.0, 6.0),
        "admin_cpu_ms": 4.3,
    }
    notes = diagnosis.notes({**RESULTS, "rollout": {**rollout, "gateway_role": beside}})
    serve = next(n for n in notes if n.startswith("p99 during promote/rollback cycles / steady"))
    assert serve.startswith(
        "p99 during promote/rollback cycles / steady p99: 3.17x. Steady p50 / p99 2.00 / 5.30 ms,"
        " during the 20 cycles 2.10 / 16.80 ms; an admin call took 30.0 ms (p50, at most 90.0)"
        " and about 4.3 ms of the control plane's CPU (the gateway-beside run's figure)."
    )
    assert "read 1.20x (the next row)" in serve
    assert not any("beside the control plane (docker" in n for n in notes)  # 1.20x: met


def test_tf_servings_published_figure_beside_the_gateways_own_cost() -> None:
    """TF Serving's ~100,000 requests per second per core (no gRPC, no inference) beside the
    gateway's CPU per request less its door's do-nothing floor, under load only."""
    floors = [
        {**_point(50000, 0.2, 0.5), "kind": "grpc-h2", "clients": 16, "server_cpu_us": 19.0},
        {**_point(9000, 0.1, 0.2), "kind": "grpc-h2", "clients": 1, "server_cpu_us": 60.0},
        {**_point(90000, 0.1, 0.3), "kind": "rest-bare", "clients": 16, "server_cpu_us": 10.0},
    ]
    markdown = report.render({**RESULTS, "floors": floors}, {}, "Benchmarks", baseline=None)
    assert "## Against TF Serving's published figures" in markdown
    assert "| gRPC, 16 clients | 119 - 19 (`grpc-h2`) = 100 us | 10,000 | 10.0x |" in markdown
    assert "| REST, 16 clients | 150 - 10 (`rest-bare`) = 140 us | 7,143 | 14.0x |" in markdown
    assert "gRPC, 1 clients" not in markdown  # a rate per core is a figure under load
    assert "TF Serving's published" not in report.render(RESULTS, {}, "Benchmarks", None)


def test_one_client_with_no_idle_cpu_and_alone_on_a_cpu_beside_the_sweep() -> None:
    results = copy.deepcopy(RESULTS)
    results["wakeups"] = {
        "rest": _pair(1, _point(1200, 0.90, 2.0, cpu=300), _point(1500, 0.60, 1.5)),
        "grpc": _pair(1, _point(1100, 1.00, 2.5, cpu=130), _point(1600, 0.55, 1.5)),
    }
    results["own_cpu"] = {
        "rest": _pair(1, _point(900, 1.00, 2.0, cpu=540), _point(1400, 0.50, 1.5)),
        "grpc": _pair(1, _point(1000, 1.10, 2.5, cpu=200), _point(1500, 0.60, 1.5)),
    }
    markdown = report.render(results, {}, "Benchmarks", baseline=None)
    assert "## One client: what the host adds" in markdown
    # The sweep's 1-client REST pair, then with every CPU kept busy, then the gateway alone.
    assert "| REST | idle between requests (the sweep) | 700 | 1100 | 0.60 | 560 |" in markdown
    assert "| REST | kept busy | 1200 | 1500 | 0.30 | 300 |" in markdown
    assert "| REST | the gateway alone on one | 900 | 1400 | 0.50 | 540 |" in markdown
    assert "| gRPC | kept busy | 1100 | 1600 | 0.45 | 130 |" in markdown
    # The missed 1-client REST row: both remeasurements, and only the one that moved it named.
    note = next(line for line in markdown.splitlines() if line.startswith("- REST at 1 client"))
    assert "kept busy by an idle-priority spinner (`SCHED_IDLE`: no CPU halts between" in note
    assert "requests) the same point cost 300 us. With the gateway alone on one CPU" in note
    assert "the same point cost 540 us. So part of it is the host's" in note
    assert "idle CPUs halting and waking (a VM's exits), which a host that polls" in note
    assert "caches" not in note  # 560 -> 540 us: not a tenth
    added = next(
        line for line in markdown.splitlines() if line.startswith("- added p50 at 1 client, REST")
    )
    assert added.endswith(
        "it was 0.30 ms (tfsgate 0.90, Triton 0.60 ms). With the gateway alone on one CPU"
        " (Triton and the load generator on the other) it was 0.50 ms (tfsgate 1.00, Triton"
        " 0.50 ms)."
    )
    assert "## One client" not in report.render(RESULTS, {}, "B", None)


def test_one_client_remeasured_and_not_moved_is_the_gateways_own_work() -> None:
    results = copy.deepcopy(RESULTS)
    results["wakeups"] = {"rest": _pair(1, _point(750, 1.3, 2.0, cpu=530), _point(1100, 0.8, 1.5))}
    results["own_cpu"] = {"rest": _pair(1, _point(760, 1.3, 2.0, cpu=520), _point(1100, 0.8, 1.5))}
    note = next(
        line
        for line in report.render(results, {}, "B", None).splitlines()
        if line.startswith("- REST at 1 client")
    )
    assert note.endswith("Neither moved it by a tenth: on this host it is the gateway's own work.")


def test_rollout_windows_are_said_and_each_windows_p99_quoted() -> None:
    """Runs whose steady and cycling windows alternated say so, and the missed row's note lists
    each window's p99; a run of one window each (older JSON) reads as before."""
    from bench import diagnosis

    rollout = {
        **RESULTS["rollout"],
        "windows": {
            "count": 4,
            "seconds": 5.0,
            "steady_p99_ms": [5.1, 5.3, 5.2, 5.6],
            "during_p99_ms": [16.0, 17.1, 15.9, 18.2],
        },
    }
    results = {**RESULTS, "rollout": rollout}
    page = report.render(results, {}, "t", None)
    assert (
        "in 4 pairs of 5 s windows alternating (steady, then 5 cycles), each side's percentiles"
        " over all its windows' requests (wrk's histograms pooled)" in page
    )
    note = next(n for n in diagnosis.notes(results) if n.startswith("p99 during promote"))
    assert (
        "Each window's p99, in order: steady 5.10, 5.30, 5.20, 5.60 ms, during 16.00, 17.10,"
        " 15.90, 18.20 ms." in note
    )
    old = report.render(RESULTS, {}, "t", None)
    assert "against the same load with none, one run of each;" in old
    assert not any("Each window" in n for n in diagnosis.notes(RESULTS))


def test_the_grpc_added_p50_note_says_how_much_is_tritons_http_endpoint() -> None:
    """tfsgate calls Triton over HTTP: where Triton's own HTTP endpoint answered one client
    slower than its gRPC one, the gRPC row's note says how much; otherwise nothing."""
    from bench import diagnosis

    said = "tfsgate calls Triton over HTTP"
    notes = diagnosis.notes(RESULTS)
    grpc = next(n for n in notes if n.startswith("added p50 at 1 client, gRPC"))
    assert (
        "Triton's own HTTP endpoint answered one client at a p50 of 0.80 ms (KServe JSON; tfsgate"
        " sends binary tensors) against 0.75 ms over gRPC in this run: about 0.05 ms of the"
        " figure is that difference." in grpc
    )
    rest = next(n for n in notes if n.startswith("added p50 at 1 client, REST"))
    assert said not in rest
    faster = copy.deepcopy(RESULTS)
    faster["sweep"]["rest"][0]["triton"]["p50_ms"] = 0.70
    assert not any(said in n for n in diagnosis.notes(faster))


def test_the_method_says_how_the_pairs_windows_alternated() -> None:
    windowed = {**RESULTS, "plan": {**RESULTS["plan"], "pair_windows": 4}}
    page = report.render(windowed, {}, "t", None)
    assert (
        "Each point is a 1 s warm-up of each side, then 4 windows of 2 s of Triton direct "
        "alternating with 4 of tfsgate (8 s a side at a sweep point;" in page
    )
    old = report.render(RESULTS, {}, "t", None)  # a JSON from before the windows
    assert (
        "Each point is a 1 s warm-up then a closed-loop run of 8 s, Triton direct first and "
        "tfsgate right after, with one load-generator thread" in old
    )


def test_a_missed_cpu_note_lists_each_windows_cpu() -> None:
    from bench import diagnosis

    sweep = RESULTS["sweep"]
    sixteen = sweep["rest"][1]
    windows = [
        {"began": 0.0, "requests": 100, "rps": 50.0, "p99_ms": 2.0, "cpu_us": c}
        for c in (122, 84, 102, 77)
    ]
    windowed = {**sixteen, "tfsgate": {**sixteen["tfsgate"], "windows": windows}}
    results = {
        **RESULTS,
        "sweep": {**sweep, "rest": [sweep["rest"][0], windowed, sweep["rest"][2]]},
    }
    rest_16 = next(n for n in diagnosis.notes(results) if n.startswith("REST at 16 clients:"))
    assert "Its 4 windows, in order: 122, 84, 102, 77 us (1 within the target)." in rest_16
    plain = next(n for n in diagnosis.notes(RESULTS) if n.startswith("REST at 16 clients:"))
    assert "windows" not in plain


def test_a_missed_cpu_note_sets_the_gateway_beside_triton_direct_and_the_before_run() -> None:
    """Triton direct's own CPU at the same point, and both in the baseline: when both moved alike,
    the note says the host moved them; when the gateway alone moved, it does not."""
    from bench import diagnosis

    def with_rest_16(gateway_us: float, triton_us: float, commit: str) -> dict[str, Any]:
        sweep = copy.deepcopy(RESULTS["sweep"])
        sweep["rest"][1]["tfsgate"]["gateway_cpu_us"] = gateway_us
        sweep["rest"][1]["triton"]["triton_cpu_us"] = triton_us
        return {**RESULTS, "sweep": sweep, "machine": {"commit": commit}}

    slower_host = with_rest_16(100.0, 160.0, "after")
    before = with_rest_16(75.0, 125.0, "before1")
    note = next(n for n in diagnosis.notes(slower_host, before) if n.startswith("REST at 16"))
    assert (
        "Triton direct's own CPU per request at this point, measured in turn with the"
        " gateway's, was 160 us: the gateway cost 0.62x of it. In the before run (`before1`)"
        " Triton's was 125 us and the gateway's 75 us (0.60x): Triton's own CPU moved +28%,"
        " the gateway's +33%, the gateway's against Triton's +4%." in note
    )
    assert "points to the host's speed between the runs" in note

    slower_gateway = with_rest_16(100.0, 125.0, "after")
    note = next(n for n in diagnosis.notes(slower_gateway, before) if n.startswith("REST at 16"))
    assert "the gateway's against Triton's +33%." in note
    assert "host's speed" not in note

    alone = next(n for n in diagnosis.notes(slower_host) if n.startswith("REST at 16"))
    assert "the gateway cost 0.62x of it." in alone
    assert "before run" not in alone
