"""py-spy profiles of the gateway under load, per protocol."""

from __future__ import annotations

import time
from typing import Any

from bench import loadgen, pyspy
from bench.bodies import Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import cpu_split, shown


def run(bench: Bench) -> None:
    """py-spy on the gateway under 16 clients per protocol (separate runs: sampling costs)."""
    assert bench.serve is not None
    case = Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)
    bodies = write_bodies(case, bench.bodies_dir)
    urls = bench.urls(case)
    seconds = bench.plan.seconds
    profiles: dict[str, Any] = {}
    for kind in ("rest", "grpc"):
        output = bench.work / f"pyspy-{kind}.txt"
        recorder = pyspy.start_record(bench.serve.process.pid, seconds, output)
        command = pyspy.record_command(bench.serve.process.pid, seconds, output)
        bench.results["commands"].setdefault("profile", shown(command))
        time.sleep(0.5)  # py-spy attaches
        # py-spy --nonblocking reads the process's memory without stopping it: the split of its
        # CPU between user space and the kernel is the gateway's own under this load.
        user_before, kernel_before = cpu_split(bench.serve.process.pid)
        if kind == "rest":
            script = loadgen.write_wrk_script(bodies.rest, bodies.rest.with_suffix(".lua"))
            result = loadgen.run_wrk(urls["rest tfsgate"], script, 16, seconds)
        else:
            log_file = bench.work / "h2load.log"
            result = loadgen.run_h2load(urls["grpc tfsgate"], bodies.predict, 16, seconds, log_file)
        user_after, kernel_after = cpu_split(bench.serve.process.pid)
        _, err = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode != 0 or not output.exists():
            bench.say(f"py-spy failed ({recorder.returncode}): {err.decode()[-500:]}")
            continue
        parsed = pyspy.parse_collapsed(output.read_text())
        requests = max(result.requests, 1)
        profiles[kind] = {
            "clients": 16,
            "rps": result.rps,
            "user_us": (user_after - user_before) / requests * 1e6,
            "kernel_us": (kernel_after - kernel_before) / requests * 1e6,
            **parsed.as_dict(),
        }
        top = ", ".join(f"{name} {share:.0%}" for name, share in parsed.by_package[:5])
        bench.say(f"profile {kind}: {parsed.samples} samples ({parsed.waiting:.0%} waits); {top}")
    bench.results["profile"] = profiles
