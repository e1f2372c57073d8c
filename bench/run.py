"""``make bench``: tfsgate, the embedded Triton's own endpoints and a naive server, on loopback.

Starts everything it measures from this checkout: example SavedModels (``tfsgate.examples``:
half_plus_two in two versions, the 3 x 1024 MLP, ``scale`` for payload sizes), a real
``tfsgate serve`` with its embedded tritonserver (whose own HTTP and gRPC ports are read from
``$TFSGATE_HOME/triton/endpoints.json``) and ``bench/naive_server.py``. Load comes from ``wrk``
(REST) and ``h2load`` (gRPC, by count: bench/loadgen.py), one thread, N connections, each point
measured in windows alternating with Triton direct's (``Bench.alternate``), so the ratios come
from one run and the host's drift falls on both sides. The gateway's CPU
is utime+stime of the ``tfsgate serve`` process alone, from ``/proc``, over each run. Results go
to a JSON file and ``bench/report.py`` turns them into ``docs/benchmarks.md`` and its plots.

``python -m bench.run [--quick] [--out docs/benchmarks.md]``; ``BENCH_QUICK=1`` for a smoke run.
``bench/measure.py`` holds the plan and the measuring ``Bench``, ``bench/sections/`` one module
per report section (each owns its setup: bodies, a naive server, a Triton config override),
``bench/machine.py`` the machine's description.
Run it under ``flock /work/coord/heavy.lock`` on a shared machine (the Makefile target does when
that lock exists).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from bench import report
from bench.machine import describe
from bench.measure import Bench, Plan
from bench.procs import ROOT, memory_mb, stop
from bench.sections import (
    cold_start,
    floors,
    instructions,
    layers,
    mlp,
    payload,
    profile,
    rollout,
    sweep,
    wakeups,
    workers,
)

SECTIONS = (
    "cold_start",
    "sweep",
    "wakeups",
    "mlp",
    "payload",
    "rollout",
    "profile",
    "layers",
    "instructions",
    "workers",
    "floors",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--work", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--plots", default=None, help="plot directory (default: next to --out)")
    parser.add_argument("--title", default="Benchmarks")
    before = ROOT / "docs" / "benchmarks-before.json"
    parser.add_argument(
        "--baseline",
        default=str(before) if before.exists() else None,
        help="an earlier results JSON to compare (default: docs/benchmarks-before.json)",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (A/B runs while optimising)",
    )
    parser.add_argument("--clients", default=None, help="sweep clients, e.g. 1,16 (default: plan)")
    parser.add_argument("--seconds", type=float, default=None, help="per sweep point")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if unknown := sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    plan = Plan.make(args.quick)
    if args.clients:
        plan = replace(plan, clients=tuple(int(c) for c in args.clients.split(",")))
    if args.seconds:
        plan = replace(plan, seconds=args.seconds)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(plan, work)
    started = time.monotonic()
    bench.results["started"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    bench.results["plan"] = plan.__dict__
    bench.results["load_before"] = os.getloadavg()
    models = bench.models()
    if "cold_start" in sections:
        cold_start.run(bench, models["half_plus_two"])
    config = bench.model_config(models)
    serve = bench.start_main(config)
    try:
        bench.results["machine"] = describe(bench.serve)
        if "sweep" in sections:
            sweep.run(bench)
        if "wakeups" in sections:
            wakeups.run(bench)
        if "mlp" in sections:
            mlp.run(bench, models["mlp"])
        if "payload" in sections:
            payload.run(bench)
        if "rollout" in sections:
            rollout.run(bench)
        if "profile" in sections:
            profile.run(bench)
        if "layers" in sections:
            layers.run(bench)
        if "instructions" in sections:
            instructions.run(bench, config)
        if "workers" in sections:
            try:
                workers.run(bench)
            except Exception as exc:  # noqa: BLE001 - the runs before it are kept and reported
                bench.say(f"workers section failed: {exc!r}")
        if "floors" in sections:
            floors.run(bench)
        bench.results["memory_end"] = memory_mb(serve.process.pid)
    finally:
        stop(serve.process)
    bench.results["load_after"] = os.getloadavg()
    bench.results["minutes"] = (time.monotonic() - started) / 60
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_suffix(".json")
    raw.write_text(json.dumps(bench.results, indent=1))
    plots = Path(args.plots) if args.plots else out.parent / out.stem
    baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    report.write(bench.results, out, plots, title=args.title, baseline=baseline)
    bench.say(f"wrote {out}, {raw} and plots in {plots} ({bench.results['minutes']:.1f} min)")


if __name__ == "__main__":
    main()
