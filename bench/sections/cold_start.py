"""Cold start: spawn -> first REST prediction, on a fresh home and on a restart."""

from __future__ import annotations

import time
from pathlib import Path

from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import (
    Serve,
    free_port,
    memory_mb,
    spawn,
    spawn_serve,
    stop,
    wait_predict,
)
from tests.support.servers import serve_command


def run(bench: Bench, half_plus_two: Path) -> None:
    """Spawn -> first REST prediction: a fresh home (conversion included), then a restart."""
    body = {"instances": HALF_PLUS_TWO_X.tolist()}
    args = ["--model_name=half_plus_two", f"--model_base_path={half_plus_two}"]
    home = bench.work / "home-cold"
    started = time.monotonic()
    serve = spawn_serve(home, args, admin=False)
    try:
        fresh = wait_predict(serve, body) - started
    finally:
        stop(serve.process)
    bench.say(f"cold start, fresh home: {fresh:.2f} s")
    # Same home again: the catalog and the converted Triton models exist (a restart).
    started = time.monotonic()
    serve = _respawn(serve, args)
    try:
        restart = wait_predict(serve, body) - started
        idle = memory_mb(serve.process.pid)
    finally:
        stop(serve.process)
    bench.say(f"cold start, restart: {restart:.2f} s")
    bench.results["cold_start"] = {"fresh_s": fresh, "restart_s": restart}
    bench.results["memory_idle"] = idle


def _respawn(old: Serve, args: list[str]) -> Serve:
    grpc_port, rest_port = free_port(), free_port()
    with open(old.log, "ab") as out:
        process = spawn(serve_command(old.home, args, grpc_port, rest_port), out)
    return Serve(process, old.home, grpc_port, rest_port, 0, old.log)
