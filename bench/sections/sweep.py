"""The concurrency sweep: half_plus_two over REST and gRPC, tfsgate against Triton direct."""

from __future__ import annotations

from typing import Any

from bench.bodies import Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, HALF_PLUS_TWO_Y, Bench
from bench.procs import (
    memory_mb,
)


def run(bench: Bench) -> None:
    case = Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)
    bodies = write_bodies(case, bench.bodies_dir)
    bench.check_grpc(bodies, HALF_PLUS_TWO_Y)
    sweep: dict[str, list[dict[str, Any]]] = {"rest": [], "grpc": []}
    for clients in bench.plan.clients:
        for kind in ("rest", "grpc"):
            sweep[kind].append(bench.pair(case, bodies, kind, clients, bench.plan.seconds))
    bench.results["sweep"] = sweep
    assert bench.serve is not None
    bench.results["memory_loaded"] = memory_mb(bench.serve.process.pid)
