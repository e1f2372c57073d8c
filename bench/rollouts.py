"""Rollout figures on a real ``tfsgate serve`` (issue 9's closing note), under wrk and h2load.

Run under the CPU lock: ``flock /work/coord/heavy.lock .venv/bin/python bench/rollouts.py``.
Serves half_plus_two as versions 1 and 2 and half_plus_three as 3, then, with 8 clients on
unnamed requests (a ``stable`` 100 split), measures p99 of:

- a steady run vs a run of the same length with 20 promote/rollback cycles spread over it;
- shadow off vs shadow on (version 3 shadowing the primary) at each ``--shadow_percent``;

first under wrk's closed loop (the server saturated), then paced by h2load at ``--paced_share``
of the closed loop's throughput (the server with headroom, as a caller usually meets it).

Runs alternate (off/on, steady/swaps) ``--repeats`` times so drift from other load on a shared
machine falls on both sides; the ratios are what to read.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import loadgen  # noqa: E402
from bench.sections.rollout import spread_cycles  # noqa: E402
from tests.support.models import model_config, write_models  # noqa: E402
from tests.support.servers import free_port, start_server  # noqa: E402
from tfsgate.core.naming import shared_model_name, tensor_prefix  # noqa: E402
from tfsgate.core.signatures import DEFAULT_SIGNATURE  # noqa: E402

TOKEN = "bench-secret"


class Load:
    """One kind of load on one URL: wrk's closed loop (each client sends its next request as soon
    as the last is answered: the server saturated), or h2load paced at a fixed rate below
    saturation (each client at ``rate / clients`` per second: latency as a caller sees it when
    the server has headroom). Started in the background so admin calls can run meanwhile."""

    def __init__(self, url: str, body: Path, clients: int, seconds: float, rate: float = 0) -> None:
        self.url, self.clients, self.seconds, self.rate = url, clients, seconds, rate
        self.body = body
        self.script = loadgen.write_wrk_script(body, body.with_suffix(".lua"))
        self.log = body.with_suffix(".h2load.log")

    @property
    def name(self) -> str:
        return f"paced {self.rate:.0f}/s" if self.rate else "closed loop"

    def command(self, seconds: float) -> list[str]:
        if not self.rate:
            return loadgen.wrk_command(self.url, self.script, self.clients, seconds)
        per_client = max(1, round(self.rate / self.clients))
        return [
            "h2load", "--h1", "-t1", f"-c{self.clients}", "-m1", f"--rps={per_client}",
            f"-D{max(1, round(seconds))}", "-d", str(self.body),
            "-H", "content-type: application/json", f"--log-file={self.log}", self.url,
        ]  # fmt: skip

    def start(self, seconds: float | None = None) -> tuple[subprocess.Popen[str], float]:
        seconds = self.seconds if seconds is None else seconds
        self.log.unlink(missing_ok=True)
        command = self.command(seconds)
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return process, seconds

    def finish(self, started: tuple[subprocess.Popen[str], float]) -> loadgen.LoadResult:
        process, seconds = started
        out, err = process.communicate(timeout=seconds + 60)
        if not self.rate:
            return loadgen.parse_wrk(out)
        return loadgen.parse_h2load(out, self.log.read_text(), float(max(1, round(seconds))))

    def run(self, seconds: float | None = None) -> loadgen.LoadResult:
        return self.finish(self.start(seconds))


def swaps_during(
    load: Load, admin: httpx.Client, api: str, cycles: int
) -> tuple[loadgen.LoadResult, int]:
    """One run with ``cycles`` promote/rollback pairs spread over it."""
    started = load.start()
    _, failures = spread_cycles(admin, api, cycles, load.seconds, print)
    return load.finish(started), failures


def show(name: str, results: list[loadgen.LoadResult]) -> float:
    p99 = statistics.median(r.p99_ms for r in results)
    rps = statistics.median(r.rps for r in results)
    errors = sum(r.errors for r in results)
    runs = ", ".join(f"{r.p99_ms:.2f}" for r in results)
    print(f"{name:40s} req/s {rps:7.0f}  p99 {p99:6.2f} ms (runs: {runs})  errors {errors}")
    return p99


def compare(load: Load, admin: httpx.Client, api: str, args: argparse.Namespace) -> None:
    """Steady vs swaps, then shadow off vs on at each share, alternated ``repeats`` times."""
    print(f"-- {load.name}, {load.clients} clients: {' '.join(load.command(load.seconds))}")
    steady, during, failures = [], [], 0
    for _ in range(args.repeats):
        steady.append(load.run())
        result, failed = swaps_during(load, admin, api, args.cycles)
        during.append(result)
        failures += failed
    base_p99 = show("steady", steady)
    swap_p99 = show(f"{args.cycles} promote/rollback cycles", during)
    print(f"p99 during swaps / steady: {swap_p99 / base_p99:.2f}x, admin failures {failures}")
    for percent in (float(p) for p in args.shadow_percent.split(",")):
        off, on = [], []
        for _ in range(args.repeats):
            off.append(load.run())
            admin.put(f"{api}/shadow", json={"version": 3, "percent": percent})
            on.append(load.run())
            admin.delete(f"{api}/shadow").raise_for_status()
        off_p99 = show("shadow off", off)
        on_p99 = show(f"shadow on ({percent:g} %)", on)
        print(f"p99 shadow {percent:g} % on / off: {on_p99 / off_p99:.2f}x")


def triton_direct(
    grpc_port: int, clients: int, seconds: float, switch_every: float | None
) -> loadgen.LoadResult:
    """Triton alone, ``clients`` threads on hpt's serving_default: all on version 1, or all
    moving between versions 1 and 2 every ``switch_every`` seconds (what promote/rollback does
    to Triton): the engine's own cost of a version switch, no tfsgate in the path. The auto
    runner serves it with ONNX Runtime: in hpt's shared Triton model, its tensors prefixed."""
    import numpy as np
    import tritonclient.grpc as triton

    x = np.array([[1.0], [2.0], [5.0]], dtype=np.float32)
    model, x_name = shared_model_name("hpt"), tensor_prefix(DEFAULT_SIGNATURE) + "x"
    version, latencies, stop = ["1"], [], threading.Event()

    def client() -> None:
        with triton.InferenceServerClient(f"127.0.0.1:{grpc_port}") as connection:
            while not stop.is_set():
                tensor = triton.InferInput(x_name, list(x.shape), "FP32")
                tensor.set_data_from_numpy(x)
                began = time.perf_counter()
                connection.infer(model, [tensor], model_version=version[0])
                latencies.append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(switch_every or 0.1)
        if switch_every:
            version[0] = "2" if version[0] == "1" else "1"
    stop.set()
    for thread in threads:
        thread.join()
    latencies.sort()
    return loadgen.LoadResult(
        requests=len(latencies),
        seconds=seconds,
        errors=0,
        p50_ms=loadgen.percentile(latencies, 0.5),
        p95_ms=loadgen.percentile(latencies, 0.95),
        p99_ms=loadgen.percentile(latencies, 0.99),
    )


def compare_triton_direct(grpc_port: int, args: argparse.Namespace) -> None:
    switch_every = (args.seconds - 1.5) / args.cycles / 2  # as often as the swaps above
    print(f"-- Triton direct (tritonclient gRPC), {args.clients} clients")
    steady, during = [], []
    for _ in range(args.repeats):
        steady.append(triton_direct(grpc_port, args.clients, args.seconds, None))
        during.append(triton_direct(grpc_port, args.clients, args.seconds, switch_every))
    base_p99 = show("version 1 only", steady)
    swap_p99 = show(f"versions 1<->2 every {switch_every:.2f} s", during)
    print(f"Triton direct p99 switching / steady: {swap_p99 / base_p99:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0, help="per load run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shadow_percent", default="10,100")
    parser.add_argument(
        "--paced_share",
        type=float,
        default=0.5,
        help="also measure at this share of the closed loop's throughput (0: closed loop only)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tfsgate-rollout-bench-"))
    base = root / "models" / "hpt"
    write_models(
        ("half_plus_two", base / "1", {}),
        ("half_plus_two", base / "2", {}),
        ("half_plus_three", base / "3", {}),
    )
    config = root / "models.config"
    config.write_text(model_config(("hpt", base)))
    body = root / "body.json"
    body.write_text(json.dumps({"instances": [[1.0], [2.0], [5.0]]}))
    admin_port = free_port()
    api = f"http://127.0.0.1:{admin_port}/v1/admin/models/hpt"
    serve_args = [f"--model_config_file={config}", f"--admin_port={admin_port}"]
    env = {"TFSGATE_ADMIN_TOKEN": TOKEN}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        start_server(root / "home", serve_args, model="hpt", env=env) as server,
        httpx.Client(headers=headers, timeout=60) as admin,
    ):
        url = f"{server.rest_url}/v1/models/hpt:predict"
        admin.post(f"{api}/promote", json={"version": 1}).raise_for_status()
        admin.put(f"{api}/traffic", json={"weights": {"stable": 100}}).raise_for_status()
        closed = Load(url, body, args.clients, args.seconds)
        capacity = closed.run(5).rps  # also the warm-up
        compare(closed, admin, api, args)
        if args.paced_share > 0:
            rate = capacity * args.paced_share
            compare(Load(url, body, args.clients, args.seconds, rate), admin, api, args)
        for comparison in admin.get(f"{api}/shadow").json()["comparisons"]:
            print("shadow summary:", json.dumps(comparison))
        started = re.search(r"started tritonserver pid \d+ \(grpc (\d+)\)", server.log())
        if started:
            compare_triton_direct(int(started.group(1)), args)


if __name__ == "__main__":
    main()
