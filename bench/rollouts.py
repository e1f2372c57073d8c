"""Rollout figures on a real ``tfsgate serve`` (issue 9's closing note), with wrk as the load.

Run under the CPU lock: ``flock /work/coord/heavy.lock .venv/bin/python bench/rollouts.py``.
Serves half_plus_two as versions 1 and 2 and half_plus_three as 3, then, with ``wrk -c8`` on
unnamed requests (a ``stable`` 100 split), measures p99 of:

- a steady run vs a run of the same length with 20 promote/rollback cycles spread over it;
- shadow off vs shadow on (version 3 shadowing the primary) at each ``--shadow_percent``.

Runs alternate (off/on, steady/swaps) ``--repeats`` times so drift from other load on a shared
machine falls on both sides; the ratios are what to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import loadgen  # noqa: E402
from tests.support.models import model_config, write_models  # noqa: E402
from tests.support.servers import free_port, start_server  # noqa: E402

TOKEN = "bench-secret"


def swaps_during(
    command: list[str], admin: httpx.Client, api: str, cycles: int, seconds: float
) -> tuple[loadgen.LoadResult, int]:
    """One wrk run with ``cycles`` promote/rollback pairs spread over it."""
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    failures = 0
    time.sleep(0.5)
    interval = (seconds - 1.5) / cycles
    for _ in range(cycles):
        due = time.monotonic() + interval
        for path, body in (("promote", {"version": 2}), ("rollback", {})):
            failures += admin.post(f"{api}/{path}", json=body).status_code != 200
            time.sleep(max(0.0, (due - time.monotonic()) / 2))
    out, _ = wrk.communicate(timeout=seconds + 60)
    return loadgen.parse_wrk(out), failures


def show(name: str, results: list[loadgen.LoadResult]) -> float:
    p99 = statistics.median(r.p99_ms for r in results)
    rps = statistics.median(r.rps for r in results)
    errors = sum(r.errors for r in results)
    runs = ", ".join(f"{r.p99_ms:.2f}" for r in results)
    print(f"{name:34s} req/s {rps:7.0f}  p99 {p99:6.2f} ms (runs: {runs})  errors {errors}")
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0, help="per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shadow_percent", default="10,100")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tfsgate-rollout-bench-"))
    base = root / "models" / "hpt"
    write_models(
        ("half_plus_two", base / "1", {}),
        ("half_plus_two", base / "2", {}),
        ("half_plus_three", base / "3", {}),
    )
    config = root / "models.config"
    config.write_text(model_config(("hpt", base)))
    body = root / "body.json"
    body.write_text(json.dumps({"instances": [[1.0], [2.0], [5.0]]}))
    script = loadgen.write_wrk_script(body, root / "body.lua")
    admin_port = free_port()
    api = f"http://127.0.0.1:{admin_port}/v1/admin/models/hpt"
    serve_args = [f"--model_config_file={config}", f"--admin_port={admin_port}"]
    env = {"TFSGATE_ADMIN_TOKEN": TOKEN}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        start_server(root / "home", serve_args, model="hpt", env=env) as server,
        httpx.Client(headers=headers, timeout=60) as admin,
    ):
        url = f"{server.rest_url}/v1/models/hpt:predict"
        command = loadgen.wrk_command(url, script, args.clients, args.seconds)
        print("load:", " ".join(command))
        admin.post(f"{api}/promote", json={"version": 1}).raise_for_status()
        admin.put(f"{api}/traffic", json={"weights": {"stable": 100}}).raise_for_status()
        loadgen.run_wrk(url, script, args.clients, 5)  # warm up
        steady, during, failures = [], [], 0
        for _ in range(args.repeats):
            steady.append(loadgen.run_wrk(url, script, args.clients, args.seconds))
            result, failed = swaps_during(command, admin, api, args.cycles, args.seconds)
            during.append(result)
            failures += failed
        print(f"{args.clients} clients, {args.cycles} promote/rollback cycles per run")
        base_p99 = show("steady", steady)
        swap_p99 = show(f"{args.cycles} promote/rollback cycles", during)
        print(f"p99 during swaps / steady: {swap_p99 / base_p99:.2f}x, admin failures {failures}")
        for percent in (float(p) for p in args.shadow_percent.split(",")):
            off, on = [], []
            for _ in range(args.repeats):
                off.append(loadgen.run_wrk(url, script, args.clients, args.seconds))
                admin.put(f"{api}/shadow", json={"version": 3, "percent": percent})
                on.append(loadgen.run_wrk(url, script, args.clients, args.seconds))
                admin.delete(f"{api}/shadow").raise_for_status()
            off_p99 = show("shadow off", off)
            on_p99 = show(f"shadow on ({percent:g} %)", on)
            print(f"p99 shadow {percent:g} % on / off: {on_p99 / off_p99:.2f}x")
        comparisons = admin.get(f"{api}/shadow").json()["comparisons"]
        for comparison in comparisons:
            print("shadow summary:", json.dumps(comparison))


if __name__ == "__main__":
    main()
