"""Payload sizes: the ``scale`` model from 1 float to 1 MB tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.bodies import Case, write_bodies
from bench.measure import Bench


def run(bench: Bench) -> None:
    plan = bench.plan
    rng = np.random.default_rng(1)
    rows = []
    for floats in plan.payload_floats:
        array = rng.random((1, floats), np.float32)
        case = Case.of("scale", 1, "x", "y", array)
        bodies = write_bodies(case, bench.bodies_dir)
        bench.check_grpc(bodies, None)
        row: dict[str, Any] = {"floats": floats, "bytes": floats * 4}
        row["json_bytes"] = bodies.rest.stat().st_size
        # A 1 MB JSON request takes about a second: longer runs for a few hundred samples.
        seconds = plan.payload_seconds * (2 if floats >= 65536 else 1)
        for kind in ("rest", "grpc"):
            row[kind] = bench.pair(case, bodies, kind, plan.payload_clients, seconds)
        rows.append(row)
    bench.results["payload"] = rows
