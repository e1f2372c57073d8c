"""Issue 11's targets (item 4), each a reader of the results JSON and a limit."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Results = dict[str, Any]


def sweep_point(results: Results, kind: str, clients: int) -> dict[str, Any] | None:
    for point in results.get("sweep", {}).get(kind, []):
        if point["clients"] == clients:
            return dict(point)
    return None


# The do-nothing server (bench/floors.py) of each door's own protocol layer: the REST door is an
# asyncio protocol on httptools' parser (gateway/http_server.py), the bare floor; the gRPC door
# its own HTTP/2 server (gateway/grpc_h2.py).
DOOR_FLOOR = {"rest": "rest-bare", "grpc": "grpc-h2"}


def floor_cpu_us(results: Results, floor_kind: str, clients: int) -> float | None:
    """The server CPU per request of one library floor at ``clients``, if the run has it."""
    for row in results.get("floors", []):
        if row["kind"] == floor_kind and row["clients"] == clients:
            return float(row["server_cpu_us"])
    return None


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    unit: str
    at_most: bool  # True: value <= limit passes; False: value >= limit passes
    limit: float
    read: Callable[[Results], float | None]

    def value(self, results: Results | None) -> float | None:
        if results is None:
            return None
        try:
            found = self.read(results)
        except (KeyError, TypeError, IndexError):
            return None
        return None if found is None or math.isnan(found) else found

    def verdict(self, value: float | None) -> str:
        if value is None:
            return "not measured"
        met = value <= self.limit if self.at_most else value >= self.limit
        return "met" if met else "**missed**"

    def show(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        if self.unit == "x":
            return f"{value:.2f}x"
        if self.unit == "us":
            return f"{value:.0f} us"
        if self.unit == "ms":
            return f"{value:.2f} ms"
        if self.unit == "MB":
            return f"{value:.0f} MB"
        return f"{value:.2f} {self.unit}"


def _sweep(
    kind: str, clients: int, read: Callable[[dict[str, Any]], float]
) -> Callable[[Results], float | None]:
    def reader(results: Results) -> float | None:
        point = sweep_point(results, kind, clients)
        return None if point is None else read(point)

    return reader


def _rps_ratio(p: dict[str, Any]) -> float:
    return ratio(p["tfsgate"]["rps"], p["triton"]["rps"])


def _p99_ratio(p: dict[str, Any]) -> float:
    return ratio(p["tfsgate"]["p99_ms"], p["triton"]["p99_ms"])


def _added_p50(p: dict[str, Any]) -> float:
    return float(p["tfsgate"]["p50_ms"] - p["triton"]["p50_ms"])


def _cpu(p: dict[str, Any]) -> float:
    return float(p["tfsgate"]["gateway_cpu_us"])


def _mlp_vs_triton(kind: str) -> Callable[[Results], float]:
    return lambda r: ratio(r["mlp"][kind]["tfsgate"]["rps"], r["mlp"][kind]["triton"]["rps"])


def _gateway_role_memory(results: Results, key: str) -> float | None:
    """The largest of the gateway role's serving processes, over the 1- and 2-worker runs."""
    rows = results.get("gateway_role_memory")
    if not rows:
        return None
    return max(float(m[key]) for row in rows for m in row["serving"])


def protocol_name(kind: str) -> str:
    return "REST" if kind == "rest" else "gRPC"


TARGETS: list[Target] = [
    *(
        Target(
            f"gateway CPU per request, {protocol_name(k)}, 16 clients",
            f"<= {lim} us",
            "us",
            True,
            lim,
            _sweep(k, 16, _cpu),
        )
        for k, lim in (("rest", 80), ("grpc", 120))
    ),
    *(
        Target(
            f"gateway CPU per request, {protocol_name(k)}, 1 client",
            "<= 250 us",
            "us",
            True,
            250,
            _sweep(k, 1, _cpu),
        )
        for k in ("rest", "grpc")
    ),
    *(
        Target(
            f"added p50 at 1 client, {protocol_name(k)} (tfsgate - Triton)",
            "<= 0.3 ms",
            "ms",
            True,
            0.3,
            _sweep(k, 1, _added_p50),
        )
        for k in ("rest", "grpc")
    ),
    *(
        Target(
            f"throughput, {protocol_name(k)}, {c} clients (tfsgate / Triton)",
            ">= 0.8x",
            "x",
            False,
            0.8,
            _sweep(k, c, _rps_ratio),
        )
        for k in ("rest", "grpc")
        for c in (16, 64)
    ),
    *(
        Target(
            f"p99 at 64 clients, {protocol_name(k)} (tfsgate / Triton)",
            "<= 2x",
            "x",
            True,
            2.0,
            _sweep(k, 64, _p99_ratio),
        )
        for k in ("rest", "grpc")
    ),
    Target(
        "MLP at 32 clients, REST (tfsgate / Triton HTTP)",
        ">= 0.8x",
        "x",
        False,
        0.8,
        _mlp_vs_triton("rest"),
    ),
    Target(
        "MLP at 32 clients, gRPC (tfsgate / Triton gRPC)",
        ">= 0.8x",
        "x",
        False,
        0.8,
        _mlp_vs_triton("grpc"),
    ),
    Target(
        "MLP at 32 clients, REST (tfsgate / naive FastAPI+TF)",
        ">= 5x",
        "x",
        False,
        5.0,
        lambda r: ratio(r["mlp"]["rest"]["tfsgate"]["rps"], r["mlp"]["naive"]["rps"]),
    ),
    Target(
        "MLP at 32 clients, REST, 2 gateway workers (tfsgate / naive FastAPI+TF)",
        ">= 5x",
        "x",
        False,
        5.0,
        lambda r: ratio(r["mlp"]["rest_two_workers"]["rps"], r["mlp"]["naive"]["rps"]),
    ),
    Target(
        "p99 during promote/rollback cycles / steady p99",
        "<= 1.5x",
        "x",
        True,
        1.5,
        lambda r: ratio(r["rollout"]["during"]["p99_ms"], r["rollout"]["steady"]["p99_ms"]),
    ),
    Target(
        "p99 during promote/rollback cycles / steady p99, on a `tfsgate gateway` beside the"
        " control plane (docker-compose.yml's shape)",
        "<= 1.5x",
        "x",
        True,
        1.5,
        lambda r: ratio(
            r["rollout"]["gateway_role"]["during"]["p99_ms"],
            r["rollout"]["gateway_role"]["steady"]["p99_ms"],
        ),
    ),
    Target(
        "gateway RSS after all runs (tfsgate serve process)",
        "<= 150 MB",
        "MB",
        True,
        150,
        lambda r: float(r["memory_end"]["rss_mb"]),
    ),
    Target(
        "gateway peak RSS (VmHWM, tfsgate serve process)",
        "<= 150 MB",
        "MB",
        True,
        150,
        lambda r: float(r["memory_end"]["peak_rss_mb"]),
    ),
    Target(
        "gateway RSS per serving process (`tfsgate gateway` role, after its runs)",
        "<= 150 MB",
        "MB",
        True,
        150,
        lambda r: _gateway_role_memory(r, "rss_mb"),
    ),
    Target(
        "gateway peak RSS per serving process (VmHWM, `tfsgate gateway` role)",
        "<= 150 MB",
        "MB",
        True,
        150,
        lambda r: _gateway_role_memory(r, "peak_rss_mb"),
    ),
    Target(
        "cold start: spawn -> first prediction, fresh home",
        "<= 5 s",
        "s",
        True,
        5.0,
        lambda r: float(r["cold_start"]["fresh_s"]),
    ),
    Target(
        "cold start: spawn -> first prediction, restart",
        "<= 5 s",
        "s",
        True,
        5.0,
        lambda r: float(r["cold_start"]["restart_s"]),
    ),
]
