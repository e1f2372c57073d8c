"""The gateway's CPU by layer (perf's CPU samples: bench/cpu_layers.py) at the CPU rows' points:
what the interpreter, the C extensions and the kernel each cost a request at 1 and 16 clients."""

from __future__ import annotations

import time
from typing import Any

from bench import cpu_layers
from bench.bodies import Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import shown
from bench.sections.profile import sampled_load

POINTS = (("rest", 1), ("grpc", 1), ("rest", 16), ("grpc", 16))
_ATTACH_S = 0.5  # perf's start before the load; the load ends before perf does


def run(bench: Bench) -> None:
    assert bench.serve is not None
    reason = cpu_layers.unavailable()
    if reason is not None:
        bench.skip("cpu layers", "cpu_layers", reason)
        return
    case = Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)
    bodies = write_bodies(case, bench.bodies_dir)
    urls = bench.urls(case)
    seconds = bench.plan.seconds
    pid = bench.serve.process.pid
    points: list[dict[str, Any]] = []
    for kind, clients in POINTS:
        data = bench.work / f"perf-{kind}-{clients}.data"
        recorder = cpu_layers.start_record(pid, seconds + 2 * _ATTACH_S, data)
        bench.results["commands"].setdefault(
            "cpu_layers",
            shown(cpu_layers.record_command(pid, seconds + 2 * _ATTACH_S, data))
            + "; "
            + "; ".join(shown(c) for c in cpu_layers.report_commands(data)),
        )
        time.sleep(_ATTACH_S)
        result, user_us, kernel_us = sampled_load(bench, bodies, urls, kind, clients, seconds)
        _, err = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode != 0 or not data.exists():
            bench.say(f"perf failed ({recorder.returncode}): {err.decode()[-500:]}")
            continue
        point = {
            "kind": kind,
            "clients": clients,
            "rps": result.rps,
            "cpu_us": user_us + kernel_us,
            "user_us": user_us,
            "kernel_us": kernel_us,
            **cpu_layers.summarise(data),
        }
        data.unlink(missing_ok=True)
        points.append(point)
        top = ", ".join(
            f"{name} {us:.0f}" for name, us in list(cpu_layers.layer_us(point).items())[:4]
        )
        bench.say(f"cpu layers {kind} {clients:>2} clients: {point['cpu_us']:.0f} us/req ({top})")
    bench.results["cpu_layers"] = {"points": points}
