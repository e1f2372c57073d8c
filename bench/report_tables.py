"""The tables of ``docs/benchmarks.md`` (``bench/report.py`` lays them out with the prose and
plots): each built from the results JSON alone."""

from __future__ import annotations

import math
from typing import Any

from bench.cpu_layers import kernel_part_us, layer_us
from bench.targets import (
    DOOR_FLOOR,
    TARGETS,
    Results,
    floor_cpu_us,
    protocol_name,
    ratio,
    sweep_point,
)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(results: Results, baseline: Results | None) -> str:
    header = ["target (issue 11, item 4)", "goal", "measured", "verdict"]
    if baseline is not None:
        header[2:2] = ["before"]
    rows = []
    for target in TARGETS:
        value = target.value(results)
        row = [target.name, target.goal, target.show(value), target.verdict(value)]
        if baseline is not None:
            row[2:2] = [target.show(target.value(baseline))]
        rows.append(row)
    return table(header, rows)


def _other_loads(tree: Any) -> list[float]:
    if isinstance(tree, dict):
        own = [float(tree["other_load"])] if "other_load" in tree else []
        return own + [x for v in tree.values() for x in _other_loads(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in _other_loads(v)]
    return []


def other_range(results: Results) -> str:
    loads = sorted(_other_loads(results))
    if not loads:
        return "no measure of other jobs' load"
    median = loads[len(loads) // 2]
    return (
        f"processes outside the benchmark used {loads[0]:.0%} to {loads[-1]:.0%} of the machine "
        f'during the measured runs (median {median:.0%}; see "other load")'
    )


def cancelled(tree: Any) -> float:
    if isinstance(tree, dict):
        return float(tree.get("cancelled", 0)) + sum(cancelled(v) for v in tree.values())
    if isinstance(tree, list):
        return sum(cancelled(v) for v in tree)
    return 0.0


def _errors(point: dict[str, Any]) -> int:
    return int(point.get("errors", 0) + point.get("server_errors", 0))


def wakeups_table(results: Results) -> str:
    """The 1-client pairs of the sweep beside the same pairs with no CPU idle and with the
    gateway alone on a CPU."""
    header = [
        "protocol",
        "CPUs",
        "tfsgate req/s",
        "Triton req/s",
        "added p50 ms",
        "gateway CPU us/req",
    ]
    rows = []
    for kind, busy in results["wakeups"].items():
        swept = sweep_point(results, kind, 1)
        for label, point in (
            ("idle between requests (the sweep)", swept),
            ("kept busy", busy),
            ("the gateway alone on one", results.get("own_cpu", {}).get(kind)),
        ):
            if point is None:
                continue
            ours, theirs = point["tfsgate"], point["triton"]
            rows.append(
                [
                    protocol_name(kind),
                    label,
                    f"{ours['rps']:.0f}",
                    f"{theirs['rps']:.0f}",
                    f"{ours['p50_ms'] - theirs['p50_ms']:.2f}",
                    f"{ours['gateway_cpu_us']:.0f}",
                ]
            )
    return table(header, rows)


def sweep_table(results: Results, kind: str) -> str:
    header = [
        "clients",
        "tfsgate req/s",
        "Triton req/s",
        "ratio",
        "tfsgate p50 / p95 / p99 ms",
        "Triton p50 / p95 / p99 ms",
        "gateway CPU us/req",
        "Triton CPU us/req",
        "errors",
        "other load",
    ]
    rows = []
    for point in results.get("sweep", {}).get(kind, []):
        ours, theirs = point["tfsgate"], point["triton"]
        rows.append(
            [
                str(point["clients"]),
                f"{ours['rps']:.0f}",
                f"{theirs['rps']:.0f}",
                f"{ratio(ours['rps'], theirs['rps']):.2f}x",
                _latencies(ours),
                _latencies(theirs),
                f"{ours['gateway_cpu_us']:.0f}",
                f"{theirs['triton_cpu_us']:.0f}",
                str(_errors(ours) + _errors(theirs)),
                _other(ours, theirs),
            ]
        )
    return table(header, rows)


def _other(*points: dict[str, Any]) -> str:
    """The other jobs' share of the machine during these runs (noise gauge)."""
    shares = [p["other_load"] for p in points if "other_load" in p]
    return f"{max(shares):.0%}" if shares else "?"


def _latencies(point: dict[str, Any]) -> str:
    return f"{point['p50_ms']:.2f} / {point['p95_ms']:.2f} / {point['p99_ms']:.2f}"


def mlp_table(results: Results) -> str:
    mlp = results["mlp"]
    rows = []
    for batching, section in (("on", mlp), ("off", mlp.get("batching_off", {}))):
        for kind in ("rest", "grpc"):
            if kind not in section:
                continue
            pair = section[kind]
            for target, label in (("tfsgate", "tfsgate"), ("triton", "Triton direct")):
                point = pair[target]
                rows.append(
                    [
                        f"{label} {protocol_name(kind)}",
                        batching,
                        f"{point['rps']:.0f}",
                        _latencies(point),
                        f"{point['gateway_cpu_us']:.0f}" if target == "tfsgate" else "",
                        f"{point['triton_cpu_us']:.0f}",
                        str(_errors(point)),
                        _other(point),
                    ]
                )
    two = mlp.get("rest_two_workers")
    if two:
        rows.append(
            [
                "tfsgate REST, `tfsgate gateway --gateway_workers=2`",
                "on",
                f"{two['rps']:.0f}",
                _latencies(two),
                f"{two.get('server_cpu_us', math.nan):.0f} (both workers)",
                f"{two['triton_cpu_us']:.0f}",
                str(_errors(two)),
                _other(two),
            ]
        )
    naive = mlp.get("naive")
    if naive:
        rows.append(
            [
                "naive FastAPI + TF REST",
                "n/a",
                f"{naive['rps']:.0f}",
                _latencies(naive),
                f"{naive.get('server_cpu_us', math.nan):.0f} (its process)",
                "",
                str(_errors(naive)),
                _other(naive),
            ]
        )
    header = [
        "path",
        "Triton dynamic batching",
        "req/s",
        "p50 / p95 / p99 ms",
        "gateway CPU us/req",
        "Triton CPU us/req",
        "errors",
        "other load",
    ]
    return table(header, rows)


def _size(n: float) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}"
    return f"{n:.0f} B"


def payload_table(results: Results) -> str:
    rows = []
    for row in results.get("payload", []):
        for kind in ("rest", "grpc"):
            pair = row[kind]
            ours, theirs = pair["tfsgate"], pair["triton"]
            wire = _size(row["json_bytes"]) + " JSON" if kind == "rest" else "raw bytes"
            rows.append(
                [
                    f"{row['floats']} ({_size(row['bytes'])})",
                    f"{protocol_name(kind)} ({wire})",
                    f"{ours['rps']:.0f}",
                    f"{theirs['rps']:.0f}",
                    f"{ratio(ours['rps'], theirs['rps']):.2f}x",
                    f"{ours['p50_ms']:.2f} / {theirs['p50_ms']:.2f}",
                    f"{ours['gateway_cpu_us']:.0f}",
                    str(_errors(ours) + _errors(theirs)),
                    _other(ours, theirs),
                ]
            )
    header = [
        "floats (tensor)",
        "protocol (request body)",
        "tfsgate req/s",
        "Triton req/s",
        "ratio",
        "p50 ms tfsgate / Triton",
        "gateway CPU us/req",
        "errors",
        "other load",
    ]
    return table(header, rows)


def rollout_table(results: Results) -> str:
    r = results["rollout"]
    shapes = [("`tfsgate serve` (admin API in the same process)", r)]
    if "gateway_role" in r:
        shapes.append(("`tfsgate gateway` beside it", r["gateway_role"]))
    rows = [
        [
            shape,
            period,
            f"{p['rps']:.0f}",
            _latencies(p),
            str(p["errors"]),
            f"{s['admin_p50_ms']:.0f} / {s['admin_max_ms']:.0f} ms" if period != "steady" else "",
            f"{s['admin_cpu_ms']:.1f} ms" if period != "steady" and "admin_cpu_ms" in s else "",
        ]
        for shape, s in shapes
        for period, p in (
            ("steady", s["steady"]),
            (f"{r['cycles']} promote/rollback cycles", s["during"]),
        )
    ]
    header = ["load on", "period", "req/s", "p50 / p95 / p99 ms", "failed requests"]
    # The control plane's CPU per call: its CPU over the cycling run less the steady run's
    # (bench/sections/rollout.py), measured where it serves no requests.
    return table([*header, "admin call p50 / slowest", "control plane CPU per call"], rows)


def workers_table(rows: list[dict[str, Any]]) -> str:
    one = {(r["kind"], r["clients"]): r["rps"] for r in rows if r["workers"] == 1}
    return table(
        ["workers", "protocol", "clients", "req/s", "vs 1 worker", "p50 / p95 / p99 ms"]
        + ["gateway CPU us/req", "errors"],
        [
            [
                str(row["workers"]),
                protocol_name(row["kind"]),
                str(row["clients"]),
                f"{row['rps']:.0f}",
                f"{ratio(row['rps'], one.get((row['kind'], row['clients']), 0.0)):.2f}x",
                _latencies(row),
                f"{row['gateway_cpu_us']:.0f}",
                str(row["errors"]),
            ]
            for row in rows
        ],
    )


def floors_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["server", "clients", "req/s", "p50 / p95 / p99 ms", "server CPU us/req", "errors"],
        [
            [
                f"`{row['kind']}`",
                str(row["clients"]),
                f"{row['rps']:.0f}",
                _latencies(row),
                f"{row['server_cpu_us']:.0f}",
                str(row["errors"]),
            ]
            for row in rows
        ],
    )


_PLACED = {
    "scheduler": "where the scheduler put them",
    "one CPU": "on one CPU",
    "two CPUs": "on two CPUs",
}


def exchange_table(rows: list[dict[str, Any]]) -> str:
    return table(
        ["the two processes", "round trip us", "CPU us per exchange, each side"],
        [
            [
                _PLACED.get(row["placement"], row["placement"]),
                f"{row['round_trip_us']:.0f}",
                f"{row['cpu_us']:.0f}",
            ]
            for row in rows
        ],
    )


def share_table(what: str, rows: list[Any]) -> str:
    return table([what, "share"], [[f"`{name}`", f"{share:.1%}"] for name, share in rows])


def memory_table(results: Results) -> str:
    rows = []
    cold = results.get("cold_start", {})
    if cold:
        rows.append(
            [
                "spawn -> first REST prediction, fresh home (conversion included)",
                f"{cold['fresh_s']:.2f} s",
            ]
        )
        rows.append(
            [
                "spawn -> first REST prediction, restart on the same home",
                f"{cold['restart_s']:.2f} s",
            ]
        )
    for key, label in (
        ("memory_idle", "idle, half_plus_two only"),
        ("memory_loaded", "after the sweeps"),
        ("memory_end", "after all runs"),
    ):
        if key in results:
            m = results[key]
            rows.append(
                [f"gateway RSS, {label}", f"{m['rss_mb']:.0f} MB (peak {m['peak_rss_mb']:.0f} MB)"]
            )
    for row in results.get("gateway_role_memory", []):
        shown = ", ".join(
            f"{m['rss_mb']:.0f} MB (peak {m['peak_rss_mb']:.0f} MB)" for m in row["serving"]
        )
        supervisor = row.get("supervisor")
        if supervisor:
            shown += f"; supervisor {supervisor['rss_mb']:.0f} MB"
        rows.append(
            [f"`tfsgate gateway --gateway_workers={row['workers']}`, each serving process", shown]
        )
    return table(["what", "value"], rows)


# Google's launch post for TF Serving (Open Source Blog, 2016-02-16, "Running your models in
# production with TensorFlow Serving"): "~100,000 queries per second (QPS) per core on a 16 vCPU
# Intel Xeon E5 2.6 GHz machine, excluding gRPC and the TensorFlow inference processing time".
TF_SERVING_QPS_PER_CORE = 100_000
TF_SERVING_SOURCE = (
    "https://opensource.googleblog.com/2016/02/running-your-models-in-production-with.html"
)


def tf_serving_table(results: Results) -> str:
    """TF Serving's published cost of its own code per request (no RPC layer, no inference)
    beside tfsgate's from this run: the gateway's CPU per request (inference is Triton's, in
    another process) less its door's do-nothing floor at the same client count (the RPC layer:
    ``grpc-h2`` for the gRPC door, ``rest-bare`` for the REST door's own HTTP server). "" when
    the run has no sweep or no floors."""
    theirs_us = 1e6 / TF_SERVING_QPS_PER_CORE  # ~10 us of CPU a request
    rows = []
    for kind in ("grpc", "rest"):
        floor_kind = DOOR_FLOOR[kind]
        for point in results.get("sweep", {}).get(kind, []):
            floor = floor_cpu_us(results, floor_kind, point["clients"])
            if floor is None or point["clients"] == 1:  # a rate per core is a figure under load
                continue
            gateway = point["tfsgate"]["gateway_cpu_us"]
            own = gateway - floor
            rows.append(
                [
                    f"{protocol_name(kind)}, {point['clients']} clients",
                    f"{gateway:.0f} - {floor:.0f} (`{floor_kind}`) = {own:.0f} us",
                    f"{1e6 / own:,.0f}" if own > 0 else "n/a",
                    f"{own / theirs_us:.1f}x" if own > 0 else "n/a",
                ]
            )
    if not rows:
        return ""
    return table(
        [
            "tfsgate, this run",
            "gateway CPU per request less its door's floor",
            "requests per second per core",
            "against TF Serving's ~10 us",
        ],
        rows,
    )


def instructions_table(points: list[dict[str, Any]], baseline: dict[str, Any] | None) -> str:
    """bench/sections/instructions.py's points, beside the baseline's where it counted them."""
    before = {p["kind"]: p for p in (baseline or {}).get("points", [])}
    header = ["point", "instructions per request, event loop's thread"]
    if before:
        header += ["baseline", "change"]
    rows = []
    for point in points:
        row = [
            f"{protocol_name(point['kind'])}, {point['clients']} client",
            f"{point['loop_kir']:.1f} k",
        ]
        if before:
            was = before.get(point["kind"])
            row += (
                [f"{was['loop_kir']:.1f} k", f"{point['loop_kir'] / was['loop_kir'] - 1:+.1%}"]
                if was
                else ["-", "-"]
            )
        rows.append(row)
    return table(header, rows)


def layers_table(points: list[dict[str, Any]]) -> str:
    """bench/sections/layers.py's points: each layer's microseconds of a request's CPU."""
    rows = []
    for point in points:
        layers = layer_us(point)
        parts = kernel_part_us(point)
        kernel = layers.pop("kernel", 0.0)
        interpreter = layers.pop("interpreter", 0.0)
        libc = layers.pop("libc", 0.0)
        rest_of_kernel = max(0.0, kernel - sum(parts.values()))
        rows.append(
            [
                f"{protocol_name(point['kind'])}, {point['clients']} client"
                + ("s" if point["clients"] != 1 else ""),
                f"{float(point['cpu_us']):.0f}",
                f"{interpreter:.0f}",
                ", ".join(f"{name} {us:.0f}" for name, us in list(layers.items())[:4] if us),
                f"{libc:.0f}",
                f"{kernel:.0f}",
                " / ".join(f"{us:.0f}" for us in (*parts.values(), rest_of_kernel)),
            ]
        )
    return table(
        [
            "point",
            "CPU per request (`/proc`), us",
            "interpreter",
            "C extensions (largest)",
            "libc",
            "kernel",
            "of it: socket sends / socket reads / event-loop waits / the rest",
        ],
        rows,
    )
