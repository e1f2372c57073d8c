"""Instructions per request (callgrind: bench/instructions.py): a ``tfsgate serve`` of the same
models under valgrind, one client per protocol, the gateway's own work counted rather than
timed."""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from bench import instructions, loadgen
from bench.bodies import PREDICT_PATH, Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import prometheus_sum, shown, spawn_serve, stop, wait_predict

REQUESTS = 1000  # per protocol: about 10 s under callgrind
_WARM = 100  # requests before counting (the codecs' and routes' memos filled)
_IDLE_S = 5.0
_START_S = 600.0  # the serve's start-up under valgrind


def run(bench: Bench, config: Path) -> None:
    reason = instructions.unavailable()
    if reason is not None:
        bench.skip("instructions", "instructions", reason)
        return
    case = Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)
    bodies = write_bodies(case, bench.bodies_dir)
    out_dir = bench.work / "callgrind"
    out_dir.mkdir(parents=True, exist_ok=True)
    wrapper = instructions.wrapper(out_dir)
    serve = spawn_serve(
        bench.work / "home-callgrind", [f"--model_config_file={config}"], False, wrapper=wrapper
    )
    try:
        wait_predict(serve, {"instances": HALF_PLUS_TWO_X.tolist()}, timeout=_START_S)
        counter = instructions.Counter(serve.process.pid, out_dir)
        counter.start()
        targets = {
            "rest": (f"{serve.rest_url}/v1/models/{case.model}:predict", bodies.rest),
            "grpc": (f"http://127.0.0.1:{serve.grpc_port}{PREDICT_PATH}", bodies.predict),
        }
        log_file = bench.work / "h2load-callgrind.log"
        bench.results["commands"]["instructions"] = (
            shown([*wrapper, "python", "-m", "tfsgate.cli", "serve", "..."])
            + "; "
            + "; ".join(
                shown(loadgen.h2load_command(url, body, 1, 0, log_file, REQUESTS, kind == "rest"))
                for kind, (url, body) in targets.items()
            )
            + "; callgrind_control --zero and --dump around each run and around an idle"
            + f" {_IDLE_S:g} s before and after them"
        )

        def calls(kind: str, count: int) -> None:
            url, body = targets[kind]
            result = loadgen.run_h2load_counted(
                url, body, 1, count, log_file, timeout=600, http1=kind == "rest"
            )
            if result.errors:
                raise RuntimeError(f"{result.errors} {kind} calls failed under callgrind")

        # Memos filled and counting on before the idle window.
        for kind in targets:
            calls(kind, _WARM)
        # The loop's own timers (the base path's poll, Triton's health probe) come in bursts:
        # their rate is read before and after the runs.
        try:
            idle = [counter.window(functools.partial(time.sleep, _IDLE_S))]
            busy = {k: counter.window(functools.partial(calls, k, REQUESTS)) for k in targets}
            idle.append(counter.window(functools.partial(time.sleep, _IDLE_S)))
        except (RuntimeError, TimeoutError) as exc:  # the other sections' figures still count
            bench.skip("instructions", "instructions", str(exc))
            return
        both = instructions.Window.joined(idle)
        points: list[dict[str, Any]] = []
        for kind, window in busy.items():
            point = {
                "kind": kind,
                "clients": 1,
                "requests": REQUESTS,
                "loop_kir": instructions.per_request(window, both, REQUESTS) / 1e3,
                "idle_loop_kir_s": [w.rate() / 1e3 for w in idle],
            }
            points.append(point)
            bench.say(
                f"instructions {kind} 1 client: {point['loop_kir']:.1f} k a request on the loop's "
                "thread"
            )
        # h2load counts a gRPC call that failed with an HTTP 200 as a success: a count of an
        # error path is no count of the request path.
        failed = _not_ok(serve.rest_url)
        if failed:
            bench.skip("instructions", "instructions", f"{failed:.0f} calls failed under callgrind")
            return
        bench.results["instructions"] = {"points": points}
    finally:
        stop(serve.process, timeout=120)
        shutil.rmtree(out_dir, ignore_errors=True)


def _not_ok(rest_url: str) -> float:
    """Calls the serve answered with another code than OK, by its own metrics."""
    page = httpx.get(f"{rest_url}/monitoring/prometheus/metrics", timeout=60).text
    return prometheus_sum(page, "tfsgate_requests_total", lambda labels: labels.get("code") != "OK")
