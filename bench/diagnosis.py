"""Why a target is missed and what would close it, from the figures of the same run.

Each note is arithmetic on the results JSON, never a figure typed in by hand:

- CPU per request against the library floors (``bench/floors.py``): a do-nothing server of the
  front door's own library under the same load; the gateway cannot cost less than its floor plus
  the upstream gRPC client.
- Throughput against the CPU ceiling: on a CPU-bound host, tfsgate's share of Triton's rate is at
  most Triton's CPU per request direct over (Triton's CPU per request behind tfsgate + the
  gateway's); the load generator and the other users of the machine come on top of both.
- The profile's heaviest packages, for what the gateway's own time is made of.
- The 1-client pairs measured again with no CPU ever idle and with the gateway alone on a CPU
  (``bench/sections/wakeups.py``): a difference is what halting idle CPUs or sharing a CPU's
  caches costs, which the host decides.
- What one loopback exchange between two processes costs on this host (``bench/exchange.py``):
  the call to Triton is one more for the gateway, in its CPU and in each request's path.
- CPU per request against Triton direct's own at the same point (windows alternating with the
  gateway's), and against the baseline run's pair: Triton's C++ runs none of the gateway's code,
  so when both moved alike between the runs the host's speed moved them.
"""

from __future__ import annotations

from typing import Any

from bench.cpu_layers import kernel_part_us, layer_us
from bench.targets import (
    DOOR_FLOOR,
    TARGETS,
    Results,
    floor_cpu_us,
    protocol_name,
    sweep_point,
)

# The REST door's alternatives measured beside its own library (issue 11, item 2).
_REST_ALTERNATIVES = {"rest-granian": "granian (ASGI)", "rest-bare": "a bare asyncio protocol"}


def _floor(results: Results, kind: str, clients: int) -> float | None:
    return floor_cpu_us(results, DOOR_FLOOR[kind], clients)


def _alternatives(results: Results, clients: int) -> str:
    """What the REST door's alternatives cost doing nothing, for the same load."""
    found = [
        (label, floor_cpu_us(results, floor_kind, clients))
        for floor_kind, label in _REST_ALTERNATIVES.items()
    ]
    shown = [f"{label} {cost:.0f} us" for label, cost in found if cost is not None]
    return f" Doing nothing under the same load: {', '.join(shown)}." if shown else ""


def _profile_top(results: Results, kind: str) -> str:
    prof = results.get("profile", {}).get(kind)
    if not prof:
        return ""
    top = ", ".join(f"`{name}` {share:.0%}" for name, share in prof["by_package"][:4])
    waiting = (
        f", waiting or in the event loop's C code {prof['waiting']:.0%} of the time"
        if "waiting" in prof
        else ""
    )
    split = ""
    if "user_us" in prof:
        user, kernel = float(prof["user_us"]), float(prof["kernel_us"])
        split = (
            f" During the profiled run the gateway's CPU per request was {user:.0f} us in user"
            f" space (the interpreter running tfsgate's Python and its C extensions,"
            f" {user / max(user + kernel, 1e-9):.0%} of it) and {kernel:.0f} us in the kernel (its"
            " socket calls)."
        )
    return (
        f" Profile ({protocol_name(kind)}, 16 clients), self time by package: {top}{waiting}."
        + split
    )


def cpu_note(
    results: Results, kind: str, clients: int, limit: float, baseline: Results | None = None
) -> str | None:
    point = sweep_point(results, kind, clients)
    if point is None:
        return None
    cpu = float(point["tfsgate"]["gateway_cpu_us"])
    floor = _floor(results, kind, min(clients, 16))
    who = "1 client" if clients == 1 else f"{clients} clients"
    text = f"{protocol_name(kind)} at {who}: {cpu:.0f} us against {limit:.0f} us."
    text += _window_cpus(point["tfsgate"], limit)
    text += _against_triton(point, cpu, baseline, kind, clients)
    if floor is not None:
        text += (
            f" The do-nothing `{DOOR_FLOOR[kind]}` server costs {floor:.0f} us per request under"
            f" the same load ({floor / limit:.1f}x the target by itself); the rest"
            f" ({max(0.0, cpu - floor):.0f} us) is the gateway's decode/route/encode and its"
            " HTTP client to Triton (one call per coalesced batch)."
        )
        if floor >= limit:
            text += (
                " Closing it needs a cheaper front door than this library (a compiled server"
                " that calls into Python once per request), not more trimming of tfsgate's"
                " code."
            )
        if kind == "rest":
            text += _alternatives(results, min(clients, 16))
    text += _layers(results, kind, clients)
    if clients == 16:
        return text + _profile_top(results, kind)
    return text + _exchange_cpu(results, cpu, floor) + _wakeups_cpu(results, kind)


def _layer_point(results: Results, kind: str, clients: int) -> dict[str, Any] | None:
    points = results.get("cpu_layers", {}).get("points", [])
    return next((p for p in points if p["kind"] == kind and p["clients"] == clients), None)


def _layers(results: Results, kind: str, clients: int) -> str:
    """What perf's CPU samples (bench/cpu_layers.py) gave each layer at this point, and the
    interpreter's share at the other client count beside it."""
    point = _layer_point(results, kind, clients)
    if point is None:
        return ""
    layers = layer_us(point)
    interpreter = layers.pop("interpreter", 0.0)
    kernel = layers.pop("kernel", 0.0)
    sends = kernel_part_us(point).get("socket sends", 0.0)
    text = (
        f" perf's CPU samples at this point (a separate run at {float(point['cpu_us']):.0f} us a"
        f" request, perf's own cost included): the interpreter running tfsgate's Python"
        f" {interpreter:.0f} us, the kernel {kernel:.0f} us (socket sends {sends:.0f} us: each"
        " carries loopback's delivery to the receiver and its wake-up), C extensions and libc"
        f" {sum(layers.values()):.0f} us."
    )
    other = _layer_point(results, kind, 16 if clients == 1 else 1)
    if other is not None:
        text += (
            f" At {other['clients']} client{'s' if other['clients'] != 1 else ''} the interpreter"
            f" took {layer_us(other).get('interpreter', 0.0):.0f} us a request."
        )
    return text


# Moves of the gateway's CPU per request and Triton's own between two runs closer than this are
# "alike": the windows' spread within one run is about as large.
_ALIKE = 0.10


def _against_triton(
    point: dict[str, Any], cpu: float, baseline: Results | None, kind: str, clients: int
) -> str:
    """The gateway's CPU per request over Triton direct's own at the same point, and the same
    pair in the baseline run."""
    triton = float(point["triton"].get("triton_cpu_us") or 0.0)
    if triton <= 0:
        return ""
    text = (
        " Triton direct's own CPU per request at this point, measured in turn with the"
        f" gateway's, was {triton:.0f} us: the gateway cost {cpu / triton:.2f}x of it."
    )
    before = sweep_point(baseline, kind, clients) if baseline else None
    if before is None or baseline is None:
        return text
    gateway_before = float(before["tfsgate"]["gateway_cpu_us"])
    triton_before = float(before["triton"].get("triton_cpu_us") or 0.0)
    if gateway_before <= 0 or triton_before <= 0:
        return text
    commit = baseline.get("machine", {}).get("commit", "?")
    triton_moved = triton / triton_before - 1
    gateway_moved = cpu / gateway_before - 1
    share_moved = (cpu / triton) / (gateway_before / triton_before) - 1
    text += (
        f" In the before run (`{commit}`) Triton's was {triton_before:.0f} us and the gateway's"
        f" {gateway_before:.0f} us ({gateway_before / triton_before:.2f}x): Triton's own CPU"
        f" moved {triton_moved:+.0%}, the gateway's {gateway_moved:+.0%}, the gateway's against"
        f" Triton's {share_moved:+.0%}."
    )
    if abs(triton_moved) > _ALIKE and abs(share_moved) <= _ALIKE:
        text += (
            f" Triton's C++ runs none of the gateway's code: both moving alike (the gateway's"
            f" against Triton's within {_ALIKE:.0%}) points to the host's speed between the runs"
            " rather than to the gateway's code."
        )
    return text


def _exchanges(results: Results) -> dict[str, dict[str, Any]]:
    return {row["placement"]: row for row in results.get("exchange", [])}


def _placed(rows: dict[str, dict[str, Any]], field: str) -> str:
    """The exchange's figure on one CPU and on two, where measured."""
    shown = [
        f"{rows[name][field]:.0f} us {how}"
        for name, how in (("one CPU", "on one CPU"), ("two CPUs", "across two"))
        if name in rows
    ]
    return f" ({', '.join(shown)})" if shown else ""


def _exchange_cpu(results: Results, cpu: float, floor: float | None) -> str:
    """The call to Triton is one more loopback exchange for the gateway (the client's is in the
    door's floor already): what it costs on this host, and what that leaves the gateway's work."""
    rows = _exchanges(results)
    placed = rows.get("scheduler")
    if placed is None:
        return ""
    each = float(placed["cpu_us"])
    text = (
        f" The call to Triton is one more loopback exchange for the gateway: on this host one"
        f" exchange between two processes cost {each:.0f} us of CPU a side where the scheduler"
        f" put them{_placed(rows, 'cpu_us')}"
    )
    if floor is None:
        return text + "."
    return text + (
        f", which leaves about {max(0.0, cpu - floor - each):.0f} us for the gateway's own"
        " decoding, routing, coalescing and encoding."
    )


def _exchange_p50(results: Results, added_ms: float) -> str:
    """The extra exchange in each request's path: its round trip on this host."""
    rows = _exchanges(results)
    placed = rows.get("scheduler")
    if placed is None or added_ms <= 0:
        return ""
    trip = float(placed["round_trip_us"])
    return (
        f" A request through tfsgate has one more loopback exchange in its path than one to"
        f" Triton direct: its round trip between two processes took {trip:.0f} us on this host"
        f" where the scheduler put them{_placed(rows, 'round_trip_us')}, {trip / 1000 / added_ms:.0%}"
        " of the added figure before any of the gateway's own work."
    )


def _window_cpus(measured: dict[str, Any], limit: float) -> str:
    """The point's windows (alternating with Triton direct's), each one's CPU per request: how
    far the host moved the figure within the point."""
    windows = measured.get("windows")
    if not windows:
        return ""
    cpus = [float(w["cpu_us"]) for w in windows]
    within = sum(cpu <= limit for cpu in cpus)
    return (
        f" Its {len(cpus)} windows, in order: {', '.join(f'{c:.0f}' for c in cpus)} us"
        f" ({within} within the target)."
    )


# The 1-client pairs measured again (bench/sections/wakeups.py): results key, how, the cost that
# removes, and what would remove it outside the benchmark.
_ONE_CLIENT_AGAIN = (
    (
        "wakeups",
        "with every CPU kept busy by an idle-priority spinner (`SCHED_IDLE`: no CPU halts"
        " between requests)",
        "idle CPUs halting and waking (a VM's exits)",
        "a host that polls before halting",
    ),
    (
        "own_cpu",
        "with the gateway alone on one CPU (Triton and the load generator on the other)",
        "sharing a CPU's caches with Triton and the load generator, which run on it between"
        " the gateway's requests",
        "cores of the gateway's own (a cpuset, as pinned deployments give it)",
    ),
)
# Below this share of the sweep's figure a remeasured point is not read as the host's doing.
_MATERIAL = 0.1


def _one_client_again(results: Results, kind: str) -> list[tuple[dict[str, Any], str, str, str]]:
    """(pair, how, cost removed, what would remove it) for each remeasurement of the run."""
    found = []
    for key, how, cause, closer in _ONE_CLIENT_AGAIN:
        point = results.get(key, {}).get(kind)
        if point is not None:
            found.append((point, how, cause, closer))
    return found


def _wakeups_cpu(results: Results, kind: str) -> str:
    """The 1-client CPU again without halts and without shared caches; which of them (if either)
    the host's part is, from how far each moved the sweep's figure."""
    again = _one_client_again(results, kind)
    swept = sweep_point(results, kind, 1)
    if not again or swept is None:
        return ""
    text = "".join(
        f" {how[0].upper()}{how[1:]} the same point cost"
        f" {point['tfsgate']['gateway_cpu_us']:.0f} us."
        for point, how, _, _ in again
    )
    base = float(swept["tfsgate"]["gateway_cpu_us"])
    moved = [
        (cause, closer)
        for point, _, cause, closer in again
        if base - float(point["tfsgate"]["gateway_cpu_us"]) >= _MATERIAL * base
    ]
    if not moved:
        return text + " Neither moved it by a tenth: on this host it is the gateway's own work."
    return (
        text
        + " So part of it is the host's, not the gateway's work: "
        + "; and ".join(f"{cause}, which {closer} would remove" for cause, closer in moved)
        + "."
    )


def _upstream_p50(results: Results) -> str:
    """The gRPC row compares with Triton's gRPC endpoint, but tfsgate calls Triton over HTTP
    (gateway/triton_http.py): where Triton's own HTTP endpoint answered one client slower, that
    much of the added figure is Triton's, not the gateway's."""
    http, grpc = sweep_point(results, "rest", 1), sweep_point(results, "grpc", 1)
    if http is None or grpc is None:
        return ""
    slower = http["triton"]["p50_ms"] - grpc["triton"]["p50_ms"]
    if slower <= 0:
        return ""
    return (
        f" tfsgate calls Triton over HTTP, and Triton's own HTTP endpoint answered one client at"
        f" a p50 of {http['triton']['p50_ms']:.2f} ms (KServe JSON; tfsgate sends binary"
        f" tensors) against {grpc['triton']['p50_ms']:.2f} ms over gRPC in this run: about"
        f" {slower:.2f} ms of the figure is that difference."
    )


def _wakeups_p50(results: Results, kind: str) -> str:
    """The added p50 of each remeasurement, with both p50s: where the host's part is gone from
    both sides (Triton direct shares the cores too), the difference need not shrink."""
    return "".join(
        f" {how[0].upper()}{how[1:]} it was"
        f" {point['tfsgate']['p50_ms'] - point['triton']['p50_ms']:.2f} ms (tfsgate"
        f" {point['tfsgate']['p50_ms']:.2f}, Triton {point['triton']['p50_ms']:.2f} ms)."
        for point, how, _, _ in _one_client_again(results, kind)
    )


def ceiling(point: dict[str, Any]) -> float | None:
    """The rate ratio two CPU-bound servers could reach from their CPU per request alone."""
    direct = float(point["triton"]["triton_cpu_us"])
    behind = float(point["tfsgate"]["triton_cpu_us"]) + float(point["tfsgate"]["gateway_cpu_us"])
    return direct / behind if behind else None


def throughput_note(results: Results, kind: str, clients: int) -> str | None:
    point = sweep_point(results, kind, clients)
    if point is None:
        return None
    most = ceiling(point)
    if most is None:
        return None
    rps = point["tfsgate"]["rps"] / point["triton"]["rps"]
    return (
        f"{protocol_name(kind)} at {clients} clients: {rps:.2f}x. Triton used"
        f" {point['triton']['triton_cpu_us']:.0f} us of CPU per request direct; behind tfsgate"
        f" Triton {point['tfsgate']['triton_cpu_us']:.0f} us + gateway"
        f" {point['tfsgate']['gateway_cpu_us']:.0f} us: were both bound by the same cores, CPU"
        f" alone would put the ratio near {most:.2f}x. 0.8x needs the gateway's CPU per request"
        " at most about a quarter of Triton's own, which is the CPU target above."
    )


def _window_p99s(shape: dict[str, Any]) -> str:
    windows = shape.get("windows")
    if not windows:
        return ""

    def listed(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    return (
        f" Each window's p99, in order: steady {listed(windows['steady_p99_ms'])} ms, during"
        f" {listed(windows['during_p99_ms'])} ms."
    )


def rollout_note(results: Results, name: str, value: float) -> str:
    """The rollout rows: the two windows' latencies and what each admin call cost."""
    rollout = results["rollout"]
    beside = "gateway` beside" in name
    shape = rollout["gateway_role"] if beside else rollout
    steady, during = shape["steady"], shape["during"]
    measured = rollout.get("gateway_role", {}).get("admin_cpu_ms")  # where it serves nothing
    cost = (
        f" and about {measured:.1f} ms of the control plane's CPU (the gateway-beside run's figure)"
        if measured
        else ""
    )
    text = (
        f"{name}: {value:.2f}x. Steady p50 / p99 {steady['p50_ms']:.2f} / {steady['p99_ms']:.2f}"
        f" ms, during the {rollout['cycles']} cycles {during['p50_ms']:.2f} /"
        f" {during['p99_ms']:.2f} ms; an admin call took {shape['admin_p50_ms']:.1f} ms (p50, at"
        f" most {shape['admin_max_ms']:.1f}){cost}.{_window_p99s(shape)}"
    )
    if beside:
        return text + (
            " Here the admin work runs in another process and competes with the gateway only"
            " for the cores (each call also swaps the gateway's routing table)."
        )
    other = rollout.get("gateway_role")
    compared = (
        " The same calls against a `tfsgate gateway` beside the control plane read"
        f" {other['during']['p99_ms'] / other['steady']['p99_ms']:.2f}x (the next row)."
        if other
        else ""
    )
    return text + (
        " In `tfsgate serve` the admin API and the catalog share the gateway's interpreter: while"
        " a call's FastAPI handling and its catalog transaction (SQLAlchemy) hold the GIL, the"
        f" requests that arrive wait.{compared} What would close it: the admin work out of the"
        " serving process (docker-compose.yml's shape), or a cheaper call (FastAPI's handling,"
        " the routing table's build and the feed's write are most of it since promote and"
        " rollback left the ORM: docs/performance.md, nineteenth pass)."
    )


def notes(results: Results, baseline: Results | None = None) -> list[str]:
    """One line per missed target of the sweep, in the targets table's order; ``baseline``, the
    before run, where the report has one."""
    out: list[str] = []
    for target in TARGETS:
        value = target.value(results)
        if value is None or target.verdict(value) == "met":
            continue
        name = target.name
        kind = "rest" if "REST" in name else "grpc"
        text: str | None = None
        if name.startswith("gateway CPU per request,") and "clients" in name:
            text = cpu_note(results, kind, 16, target.limit, baseline)
        elif name.startswith("gateway CPU per request,"):
            text = cpu_note(results, kind, 1, target.limit, baseline)
        elif name.startswith("throughput,"):
            clients = 16 if "16 clients" in name else 64
            text = throughput_note(results, kind, clients)
        elif name.startswith("added p50"):
            text = (
                f"{name}: {value:.2f} ms. At one client the added time is the gateway's CPU per"
                " request plus its wake-ups (HTTP/gRPC in, HTTP out to Triton, back)."
                + _exchange_p50(results, value)
                + (_upstream_p50(results) if kind == "grpc" else "")
                + _wakeups_p50(results, kind)
            )
        elif name.startswith("p99 at 64"):
            text = (
                f"{name}: {value:.2f}x. At 64 clients requests queue for the gateway's one"
                " event loop; a shorter tail needs less CPU per request (above) or more"
                " gateway processes on spare cores."
            )
        elif "naive" in name:
            mlp = results["mlp"]
            if "workers" in name:
                point = mlp["rest_two_workers"]
                gateway_us = point.get("server_cpu_us", 0.0)
            else:
                point = mlp["rest"]["tfsgate"]
                gateway_us = point["gateway_cpu_us"]
            text = (
                f"{name}: {value:.2f}x. tfsgate REST used {gateway_us:.0f}"
                f" us (gateway) + {point['triton_cpu_us']:.0f} us (Triton) per"
                f" request, the naive server {mlp['naive'].get('server_cpu_us', 0):.0f} us in one"
                " process: 5x needs the two hops to cost a fifth of one in-process call."
            )
        elif name.startswith("p99 during promote/rollback"):
            text = rollout_note(results, name, value)
        elif name.startswith("MLP"):
            text = (
                f"{name}: {value:.2f}x. The same CPU arithmetic as the throughput rows applies"
                " (see the MLP table's CPU columns)."
            )
        elif "RSS" in name and "gateway` role" in name:
            text = (
                f"{name}: {value:.0f} MB. A `tfsgate gateway` process holds the front doors"
                " (grpc's core, protobuf descriptors, numpy), the routing feed's SQLAlchemy"
                " engine and its Triton client; measured after the workers section's runs"
                " (half_plus_two at 16 and 64 clients)."
            )
        elif "RSS" in name:
            text = (
                f"{name}: {value:.0f} MB. `tfsgate serve` is the gateway and the control plane in"
                " one process (SQLAlchemy, FastAPI for the admin API, the catalog, the"
                " converter's modules, protobuf descriptors; Alembic runs in a child), after every"
                " section including the 1 MB payloads (free heap pages are handed back after"
                " large requests, gateway/heap.py); the gateway role alone is the row measured"
                " on `tfsgate gateway`."
            )
        elif name.startswith("cold start"):
            text = (
                f"{name}: {value:.2f} s. This is tritonserver's start, the model loads"
                " (python-backend stubs, ONNX Runtime sessions) and, on a fresh home, the"
                " SavedModel -> ONNX conversion: not the gateway's hot path (not issue 11's"
                " phase 2 work; not profiled here)."
            )
        if text:
            out.append(text)
    return out
