"""An interleaved A/B of two checkouts: the figure for one change, where ``make bench`` pairs drift.

Two full ``make bench`` runs minutes apart differ by more than most single changes (this shared
2-core machine's other load and its hour move the CPU per request 20-100 %). Here both checkouts
serve side by side, each a ``tfsgate serve`` started from its own tree, and the same load points
run against each in turn, the order flipped every round; the figures are per-point medians over
the rounds, with how many rounds the second checkout came out lower.

``python -m bench.ab --before /tmp/before [--rounds 6] [--seconds 4] [--clients 1,16]
[--kinds rest,grpc,admin,rollout] [--model half_plus_two|mlp|scale] [--floats N]`` (``--before``: a
worktree of the earlier commit, e.g. ``git worktree add /tmp/before HEAD~1``; ``--before_python``
and ``--after_python``: each side's interpreter, a venv's ``bin/python``, for an A/B of Pythons
on one tree). Peak RSS of each
serve is printed at the end (with ``--model scale --floats 262144`` that is the 1 MB payload's).
The ``admin`` kind is back-to-back promote/rollback calls on half_plus_two through the admin API
with no other load: the serve's CPU per call, the rollout rows' cost (``clients`` is ignored).
The ``rollout`` kind is the rollout section's load on one serve: REST on half_plus_two's ``stable``
label with a promote/rollback pair each second, whose p99 to set beside the ``rest`` kind's at the
same clients (the rollout rows' ratio); its CPU per request includes the admin calls'.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from bench import loadgen
from bench.bodies import Bodies, Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, Bench, Plan
from bench.procs import ROOT, Serve, cpu_seconds, memory_mb, spawn_serve, stop, wait_predict
from bench.sections.rollout import STABLE_PATH, spread_cycles


@dataclass
class Point:
    """One load point's samples on one side: CPU us per request and p50 ms, one per round."""

    cpu_us: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)


def case_of(model: str, floats: int) -> Case:
    if model == "mlp":
        return Case.of("mlp", 1, "x", "output_0", np.random.default_rng(1).random((1, 1024)))
    if model == "scale":
        array = np.random.default_rng(1).random((1, floats), np.float32)
        return Case.of("scale", 1, "x", "y", array)
    return Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)


def measure(
    serve: Serve, model: str, bodies: Bodies, kind: str, clients: int, seconds: float, work: Path
) -> tuple[float, loadgen.LoadResult]:
    """One run of the load generator against ``serve``: CPU us per request, and the run."""
    before = cpu_seconds(serve.process.pid)
    if kind == "admin":
        result = admin_calls(serve, seconds)
    elif kind == "rest":
        script = loadgen.write_wrk_script(bodies.rest, work / f"{model}.lua")
        url = f"{serve.rest_url}/v1/models/{model}:predict"
        result = loadgen.run_wrk(url, script, clients, seconds)
    elif kind == "rollout":
        result = rollout(serve, bodies, clients, seconds, work)
    else:
        url = f"http://127.0.0.1:{serve.grpc_port}/tensorflow.serving.PredictionService/Predict"
        result = loadgen.run_h2load(url, bodies.predict, clients, seconds, work / "h2load.log")
    spent = cpu_seconds(serve.process.pid) - before
    return 1e6 * spent / max(result.requests, 1), result


def admin_calls(serve: Serve, seconds: float) -> loadgen.LoadResult:
    """Promote/rollback pairs on half_plus_two for ``seconds``, one call at a time."""
    admin = f"http://127.0.0.1:{serve.admin_port}/v1/admin/models/half_plus_two"
    times: list[float] = []
    with httpx.Client(timeout=60) as client:
        client.post(f"{admin}/promote", json={"version": 1}).raise_for_status()
        began = time.perf_counter()
        while time.perf_counter() - began < seconds or len(times) % 2:
            path, payload = ("promote", {"version": 2}) if len(times) % 2 == 0 else ("rollback", {})
            start = time.perf_counter()
            client.post(f"{admin}/{path}", json=payload).raise_for_status()
            times.append((time.perf_counter() - start) * 1e3)
        spent = time.perf_counter() - began
    p50, p95, p99 = (float(np.percentile(times, q)) for q in (50, 95, 99))
    return loadgen.LoadResult(len(times), spent, 0, p50, p95, p99)


def rollout(
    serve: Serve, bodies: Bodies, clients: int, seconds: float, work: Path
) -> loadgen.LoadResult:
    """REST on half_plus_two's stable label for ``seconds`` with a promote/rollback pair each
    second spread over the run (``bench/sections/rollout.py``'s cycles)."""
    script = loadgen.write_wrk_script(bodies.rest, work / "rollout.lua")
    command = loadgen.wrk_command(f"{serve.rest_url}{STABLE_PATH}", script, clients, seconds)
    admin = f"http://127.0.0.1:{serve.admin_port}/v1/admin/models/half_plus_two"
    with httpx.Client(timeout=60) as client:
        client.post(f"{admin}/promote", json={"version": 1}).raise_for_status()
        wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, failures = spread_cycles(client, admin, max(1, round(seconds)), seconds, print)
    out, _ = wrk.communicate(timeout=seconds + 60)
    if failures:
        raise RuntimeError(f"{failures} admin calls failed")
    return loadgen.parse_wrk(out)


def points_of(kinds: str, clients: str) -> list[tuple[str, int]]:
    """Each load kind at each client count; the admin kind once (its calls come one at a time)."""
    loads = [kind for kind in kinds.split(",") if kind != "admin"]
    points = [(kind, int(count)) for count in clients.split(",") for kind in loads]
    return points + [("admin", 1)] * ("admin" in kinds.split(","))


def median_line(name: str, a: Point, b: Point) -> str:
    cpu_a, cpu_b = statistics.median(a.cpu_us), statistics.median(b.cpu_us)
    lower = sum(y < x for x, y in zip(a.cpu_us, b.cpu_us, strict=True))
    return (
        f"{name}: CPU {cpu_a:.0f} -> {cpu_b:.0f} us/req ({cpu_b / cpu_a:.2f}x, lower in"
        f" {lower}/{len(a.cpu_us)} rounds); p50 {statistics.median(a.p50_ms):.3f} ->"
        f" {statistics.median(b.p50_ms):.3f} ms; p99 {statistics.median(a.p99_ms):.3f} ->"
        f" {statistics.median(b.p99_ms):.3f} ms; {statistics.median(a.rps):.0f} ->"
        f" {statistics.median(b.rps):.0f} req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="checkout A (the earlier commit)")
    parser.add_argument("--after", default=str(ROOT), help="checkout B (default: this one)")
    parser.add_argument("--before_python", default=sys.executable, help="checkout A's Python")
    parser.add_argument("--after_python", default=sys.executable, help="checkout B's Python")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--kinds", default="rest,grpc")
    parser.add_argument(
        "--model", default="half_plus_two", choices=("half_plus_two", "mlp", "scale")
    )
    parser.add_argument("--floats", type=int, default=262144, help="the scale model's tensor")
    parser.add_argument("--work", default=str(ROOT / "var" / "bench-ab"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(Plan.make(quick=True), work)
    config = bench.model_config(bench.models())
    bodies = write_bodies(case_of(args.model, args.floats), work / "bodies")
    trees = {"A": Path(args.before).resolve(), "B": Path(args.after).resolve()}
    pythons = {"A": args.before_python, "B": args.after_python}
    serves: dict[str, Serve] = {}
    try:
        for side, tree in trees.items():
            home = work / f"home-{side}"
            config_flag = [f"--model_config_file={config}"]
            serves[side] = spawn_serve(home, config_flag, True, tree, pythons[side])
        for serve in serves.values():
            wait_predict(serve, {"instances": HALF_PLUS_TWO_X.tolist()})
        points = points_of(args.kinds, args.clients)
        samples = {(side, point): Point() for side in serves for point in points}
        for serve in serves.values():  # warm up: connections, first-call paths
            for kind, clients in points:
                measure(serve, args.model, bodies, kind, clients, 1, work)
        for round_ in range(args.rounds):
            order = ["A", "B"] if round_ % 2 == 0 else ["B", "A"]
            for point in points:
                for side in order:
                    cpu_us, result = measure(
                        serves[side], args.model, bodies, *point, args.seconds, work
                    )
                    sample = samples[(side, point)]
                    sample.cpu_us.append(cpu_us)
                    sample.p50_ms.append(result.p50_ms)
                    sample.rps.append(result.rps)
                    sample.p99_ms.append(result.p99_ms)
            bench.say(f"round {round_ + 1}/{args.rounds} done")
        sides = {side: f"{trees[side]} ({pythons[side]})" for side in trees}
        print(f"A = {sides['A']}, B = {sides['B']}; {args.model}, {args.seconds:g} s per run")
        for kind, clients in points:
            name = f"{kind} {clients:>2} clients"
            print(
                median_line(name, samples[("A", (kind, clients))], samples[("B", (kind, clients))])
            )
        for side, serve in serves.items():
            print(f"{side} peak RSS: {memory_mb(serve.process.pid)}")
    finally:
        for serve in serves.values():
            stop(serve.process)


if __name__ == "__main__":
    main()
