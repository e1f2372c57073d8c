"""py-spy profiles of the gateway under load, per protocol."""

from __future__ import annotations

import time
from typing import Any

from bench import loadgen, pyspy
from bench.bodies import Bodies, Case, write_bodies
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
        result, user_us, kernel_us = sampled_load(bench, bodies, urls, kind, 16, seconds)
        _, err = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode != 0 or not output.exists():
            bench.say(f"py-spy failed ({recorder.returncode}): {err.decode()[-500:]}")
            continue
        parsed = pyspy.parse_collapsed(output.read_text())
        profiles[kind] = {
            "clients": 16,
            "rps": result.rps,
            "user_us": user_us,
            "kernel_us": kernel_us,
            **parsed.as_dict(),
        }
        top = ", ".join(f"{name} {share:.0%}" for name, share in parsed.by_package[:5])
        bench.say(f"profile {kind}: {parsed.samples} samples ({parsed.waiting:.0%} waits); {top}")
    bench.results["profile"] = profiles


def sampled_load(
    bench: Bench, bodies: Bodies, urls: dict[str, str], kind: str, clients: int, seconds: float
) -> tuple[loadgen.LoadResult, float, float]:
    """One run of the load generator against the gateway while a profiler samples it (not a
    measured point): the run, and the gateway's user and kernel CPU per request over it (us)."""
    assert bench.serve is not None
    pid = bench.serve.process.pid
    user_before, kernel_before = cpu_split(pid)
    if kind == "rest":
        script = loadgen.write_wrk_script(bodies.rest, bodies.rest.with_suffix(".lua"))
        result = loadgen.run_wrk(urls["rest tfsgate"], script, clients, seconds)
    else:
        log_file = bench.work / "h2load.log"
        result = loadgen.run_h2load(
            urls["grpc tfsgate"], bodies.predict, clients, seconds, log_file
        )
    user_after, kernel_after = cpu_split(pid)
    requests = max(result.requests, 1)
    return (
        result,
        (user_after - user_before) / requests * 1e6,
        (kernel_after - kernel_before) / requests * 1e6,
    )
