"""Library floors: do-nothing servers of the front doors' libraries under the same load, and
what an exchange between two processes costs on this host (``bench/exchange.py``)."""

from __future__ import annotations

import sys
from typing import Any

from bench import exchange, floors, loadgen
from bench.bodies import PREDICT_PATH, Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import (
    free_port,
    shown,
    spawn,
    stop,
    tree_cpu_seconds,
    wait_port,
)


def run(bench: Bench) -> None:
    """Do-nothing servers of the libraries the front doors use, under the same load."""
    case = Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)
    bodies = write_bodies(case, bench.bodies_dir)
    script = loadgen.write_wrk_script(bodies.rest, bodies.rest.with_suffix(".lua"))
    log_file = bench.work / "h2load.log"
    seconds = max(2.0, bench.plan.seconds / 2)
    rows: list[dict[str, Any]] = []
    for kind in floors.KINDS:
        port = free_port()
        command = [sys.executable, "-m", "bench.floors", kind, str(port)]
        with open(bench.work / "floor.log", "wb") as out:
            process = spawn(command, out)
        bench.results["commands"].setdefault("floor server", shown(command))
        grpc_door = kind.startswith("grpc")
        path = PREDICT_PATH if grpc_door else "/v1/models/half_plus_two:predict"
        url = f"http://127.0.0.1:{port}{path}"

        def load(clients: int, duration: float, url: str = url) -> loadgen.LoadResult:
            if url.endswith(PREDICT_PATH):
                return loadgen.run_h2load(url, bodies.predict, clients, duration, log_file)
            return loadgen.run_wrk(url, script, clients, duration)

        try:
            wait_port(port)
            load(16, bench.plan.warmup)
            for clients in (1, 16):
                used = tree_cpu_seconds(process.pid)
                result = load(clients, seconds)
                used = tree_cpu_seconds(process.pid) - used
                row = {"kind": kind, "clients": clients, **result.as_dict()}
                row["server_cpu_us"] = used / max(1, result.requests) * 1e6
                rows.append(row)
                bench.say(
                    f"floor {kind:20} {clients:2} clients: {result.rps:6.0f} req/s, "
                    f"{row['server_cpu_us']:.0f} us/req, errors {result.errors}"
                )
        finally:
            stop(process)
    bench.results["floors"] = rows
    bench.results["exchange"] = exchange.run()
    for row in bench.results["exchange"]:
        bench.say(
            f"exchange {row['placement']:10}: round trip {row['round_trip_us']:.0f} us,"
            f" {row['cpu_us']:.0f} us CPU a side"
        )
