"""p99 under promote/rollback cycles against the same load with none, in two shapes.

``serve``: the load on ``tfsgate serve``, the process whose admin API takes the calls (gateway and
control plane share one interpreter, so each call's catalog work holds the GIL the gateway's
event loop waits on). ``gateway``: the load on a ``tfsgate gateway`` beside it (the routing feed
carries each change), as docker-compose.yml deploys them: the admin work then only competes for
the cores.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import loadgen
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import cpu_seconds, shown, wait_http
from bench.sections import workers

STABLE_PATH = "/v1/models/half_plus_two/labels/stable:predict"


def run(bench: Bench) -> None:
    """p99 under promote/rollback cycles against the same load with none."""
    assert bench.serve is not None
    bench.bodies_dir.mkdir(parents=True, exist_ok=True)  # when this section runs alone
    body = bench.bodies_dir / "rollout.rest.json"
    body.write_text(json.dumps({"instances": HALF_PLUS_TWO_X.tolist()}))
    admin = f"http://127.0.0.1:{bench.serve.admin_port}/v1/admin/models/half_plus_two"
    with httpx.Client(timeout=60) as client:
        client.post(f"{admin}/promote", json={"version": 1}).raise_for_status()
        result = _cycles(bench, client, admin, f"{bench.serve.rest_url}{STABLE_PATH}", body, True)
        bench.results["commands"]["rest rollout"] = result.pop("command")
        with workers.gateway(bench, 1) as (_, rest_port, _grpc):
            url = f"http://127.0.0.1:{rest_port}{STABLE_PATH}"
            beside = _cycles(bench, client, admin, url, body, False)
            bench.results["commands"]["rest rollout, gateway role"] = beside.pop("command")
    bench.results["rollout"] = {
        "clients": bench.plan.rollout_clients,
        "cycles": bench.plan.rollout_cycles,
        **result,
        "gateway_role": beside,
    }


def _cycles(
    bench: Bench, client: httpx.Client, admin: str, url: str, body: Path, serves_load: bool
) -> dict[str, Any]:
    """Steady windows and windows with the cycles spread over them, alternating (steady first),
    each side's percentiles over all its windows' requests: a host whose speed drifts over the
    run (other tenants of a shared machine) weighs on both sides alike, where one steady run
    then one cycling run read that drift as the cycles' doing (this VM: the gateway-beside
    shape's p99 4.64 ms steady, 2.31 ms during the cycles). ``serves_load``: the load goes to
    the process whose admin API takes the calls (``tfsgate serve``)."""
    plan = bench.plan
    script = loadgen.write_wrk_script(body, body.with_suffix(".lua"))
    wait_http(url, method="POST", body=json.loads(body.read_text()))
    loadgen.run_wrk(url, script, plan.rollout_clients, plan.warmup)
    assert bench.serve is not None
    control = bench.serve.process.pid  # the process whose admin API takes the calls
    seconds = plan.rollout_seconds / plan.rollout_windows
    cycles = plan.rollout_cycles // plan.rollout_windows
    command = loadgen.wrk_command(url, script, plan.rollout_clients, seconds)
    steady_out: list[str] = []
    during_out: list[str] = []
    steady_cpu = during_cpu = 0.0
    admin_ms: list[float] = []
    failures = 0
    for _ in range(plan.rollout_windows):
        cpu = cpu_seconds(control)
        steady_out.append(loadgen.run(command, timeout=seconds + 60))
        steady_cpu += cpu_seconds(control) - cpu
        cpu = cpu_seconds(control)
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        took, failed = spread_cycles(client, admin, cycles, seconds, bench.say)
        out, _ = wrk.communicate(timeout=seconds + 60)
        during_cpu += cpu_seconds(control) - cpu
        during_out.append(out)
        admin_ms += took
        failures += failed
    steady, during = loadgen.pooled_wrk(steady_out), loadgen.pooled_wrk(during_out)
    bench.say(
        f"rollout ({url}): steady p99 {steady.p99_ms:.2f} ms, during {plan.rollout_cycles}"
        f" cycles {during.p99_ms:.2f} ms, errors {during.errors}, admin failures {failures}"
    )
    result: dict[str, Any] = {
        "steady": steady.as_dict(),
        "during": during.as_dict(),
        "admin_failures": failures,
        "admin_p50_ms": float(np.percentile(admin_ms, 50)),
        "admin_max_ms": max(admin_ms),
        "windows": {
            "count": plan.rollout_windows,
            "seconds": seconds,
            "steady_p99_ms": [loadgen.parse_wrk(out).p99_ms for out in steady_out],
            "during_p99_ms": [loadgen.parse_wrk(out).p99_ms for out in during_out],
        },
        "command": shown(command),
    }
    if not serves_load:
        # The control plane's CPU per admin call: its CPU over the cycling windows less over the
        # steady ones (as long). Only where it serves no requests: in the serve shape the
        # requests' CPU moves between two 20 s runs by more than 40 calls cost.
        result["admin_cpu_ms"] = max(0.0, during_cpu - steady_cpu) / len(admin_ms) * 1e3
    return result


def spread_cycles(
    client: httpx.Client, admin: str, cycles: int, seconds: float, say: Callable[[str], None]
) -> tuple[list[float], int]:
    """``cycles`` promote/rollback pairs on ``admin`` (a model's admin URL) spread over a load run
    of ``seconds`` that began just now: each call's time in ms, and how many failed. The calls
    are evenly spaced from half a second in (the load generator connected) to half an interval
    before the end, each at its own time whatever the last one took, so the cycles cover the run
    rather than its first three quarters (the spacing before: each pair waited on its
    predecessor's time)."""
    admin_ms: list[float] = []
    failures = 0
    start = time.monotonic() + 0.5
    interval = (seconds - 0.5) / cycles
    for cycle in range(cycles):
        for half, (path, payload) in enumerate((("promote", {"version": 2}), ("rollback", {}))):
            time.sleep(max(0.0, start + (cycle + half / 2) * interval - time.monotonic()))
            began = time.perf_counter()
            reply = client.post(f"{admin}/{path}", json=payload)
            admin_ms.append((time.perf_counter() - began) * 1000)
            if reply.status_code != 200:
                failures += 1
                say(f"cycle {cycle}: {path} answered {reply.status_code} {reply.text}")
    return admin_ms, failures
