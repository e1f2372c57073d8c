"""p99 under promote/rollback cycles against the same load with none."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import numpy as np

from bench import loadgen
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import (
    shown,
    wait_http,
)


def run(bench: Bench) -> None:
    """p99 under promote/rollback cycles against the same load with none."""
    assert bench.serve is not None
    plan = bench.plan
    admin = f"http://127.0.0.1:{bench.serve.admin_port}/v1/admin/models/half_plus_two"
    url = f"{bench.serve.rest_url}/v1/models/half_plus_two/labels/stable:predict"
    bench.bodies_dir.mkdir(parents=True, exist_ok=True)  # when this section runs alone
    body = bench.bodies_dir / "rollout.rest.json"
    body.write_text(json.dumps({"instances": HALF_PLUS_TWO_X.tolist()}))
    script = loadgen.write_wrk_script(body, body.with_suffix(".lua"))
    with httpx.Client(timeout=60) as client:
        client.post(f"{admin}/promote", json={"version": 1}).raise_for_status()
        wait_http(url, method="POST", body=json.loads(body.read_text()))
        loadgen.run_wrk(url, script, plan.rollout_clients, plan.warmup)
        steady = loadgen.run_wrk(url, script, plan.rollout_clients, plan.rollout_seconds)
        command = loadgen.wrk_command(url, script, plan.rollout_clients, plan.rollout_seconds)
        bench.results["commands"]["rest rollout"] = shown(command)
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        admin_ms: list[float] = []
        failures = 0
        time.sleep(0.5)
        interval = (plan.rollout_seconds - 1.5) / plan.rollout_cycles
        for cycle in range(plan.rollout_cycles):
            due = time.monotonic() + interval
            for path, payload in (("promote", {"version": 2}), ("rollback", {})):
                began = time.perf_counter()
                reply = client.post(f"{admin}/{path}", json=payload)
                admin_ms.append((time.perf_counter() - began) * 1000)
                if reply.status_code != 200:
                    failures += 1
                    bench.say(f"cycle {cycle}: {path} answered {reply.status_code} {reply.text}")
                time.sleep(max(0.0, (due - time.monotonic()) / 2))
        out, err = wrk.communicate(timeout=plan.rollout_seconds + 60)
        cycles = loadgen.parse_wrk(out)
    bench.results["rollout"] = {
        "clients": plan.rollout_clients,
        "cycles": plan.rollout_cycles,
        "steady": steady.as_dict(),
        "during": cycles.as_dict(),
        "admin_failures": failures,
        "admin_p50_ms": float(np.percentile(admin_ms, 50)),
        "admin_max_ms": max(admin_ms),
    }
    bench.say(
        f"rollout: steady p99 {steady.p99_ms:.2f} ms, during {plan.rollout_cycles} cycles "
        f"{cycles.p99_ms:.2f} ms, errors {cycles.errors}, admin failures {failures}"
    )
