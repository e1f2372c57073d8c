"""Rollout figures on a real ``tfsgate serve`` (issue 9's closing note).

Run under the CPU lock: ``flock /work/coord/heavy.lock .venv/bin/python bench/rollouts.py``.
Serves half_plus_two as versions 1 and 2 (and half_plus_three as 3, the shadow), then with 8
client threads predicting continuously over REST measures p99 of:

- steady state vs 20 promote/rollback cycles through the admin API (and counts failed requests);
- shadow off vs shadow on (version 3 shadowing the primary at --shadow_percent).

Each phase runs the same load for the same time; the ratios are what to read (absolute figures
drift on a shared machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.models import model_config, write_models  # noqa: E402
from tests.support.servers import ServerProcess, free_port, start_server  # noqa: E402

TOKEN = "bench-secret"


class Load:
    def __init__(self, server: ServerProcess, clients: int) -> None:
        self.url = f"{server.rest_url}/v1/models/hpt:predict"
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.post(self.url, json={"instances": [1.0]}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - started
                with self._lock:
                    self.latencies.append(elapsed)
                    self.failures += not ok

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def take(self) -> tuple[list[float], int]:
        with self._lock:
            taken, failures = self.latencies, self.failures
            self.latencies, self.failures = [], 0
        return taken, failures


def p99_ms(samples: list[float]) -> float:
    return float(np.percentile(np.array(samples) * 1000, 99)) if samples else float("nan")


def phase(load: Load, seconds: float, during: Callable[[], None] | None = None) -> dict[str, float]:
    load.take()
    started = time.monotonic()
    if during is not None:
        during()
    time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    samples, failures = load.take()
    return {
        "requests": len(samples),
        "failed": failures,
        "p50_ms": float(np.percentile(np.array(samples) * 1000, 50)) if samples else float("nan"),
        "p99_ms": p99_ms(samples),
        "seconds": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0, help="per steady/shadow phase")
    parser.add_argument("--shadow_percent", type=float, default=10.0)
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
    admin_port = free_port()
    api = f"http://127.0.0.1:{admin_port}/v1/admin/models/hpt"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    serve_args = [f"--model_config_file={config}", f"--admin_port={admin_port}"]
    with (
        start_server(
            root / "home", serve_args, model="hpt", env={"TFSGATE_ADMIN_TOKEN": TOKEN}
        ) as server,
        httpx.Client(headers=headers, timeout=60) as admin,
    ):
        admin.post(f"{api}/promote", json={"version": 1}).raise_for_status()
        admin.put(f"{api}/traffic", json={"weights": {"stable": 100}}).raise_for_status()

        def cycles() -> None:
            for _ in range(args.cycles):
                admin.post(f"{api}/promote", json={"version": 2}).raise_for_status()
                admin.post(f"{api}/rollback", json={}).raise_for_status()

        with Load(server, args.clients) as load:
            phase(load, 5.0)  # warm up
            steady = phase(load, args.seconds)
            swaps = phase(load, 0.0, cycles)
            steady_after = phase(load, args.seconds)
            shadow_off = phase(load, args.seconds)
            body = {"version": 3, "percent": args.shadow_percent}
            admin.put(f"{api}/shadow", json=body).raise_for_status()
            shadow_on = phase(load, args.seconds)
            admin.delete(f"{api}/shadow").raise_for_status()
        summary = admin.get(f"{api}/shadow").json()["comparisons"]
    steady_p99 = (steady["p99_ms"] + steady_after["p99_ms"]) / 2
    print(f"clients {args.clients}, cycles {args.cycles}")
    for name, result in (
        ("steady", steady),
        (f"{args.cycles} promote/rollback cycles", swaps),
        ("steady after", steady_after),
        ("shadow off", shadow_off),
        (f"shadow on ({args.shadow_percent:g} %)", shadow_on),
    ):
        print(
            f"{name:32s} requests {result['requests']:6.0f}  failed {result['failed']:3.0f}  "
            f"p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  "
            f"({result['seconds']:.1f} s)"
        )
    print(f"p99 during swaps / steady: {swaps['p99_ms'] / steady_p99:.2f}x")
    print(f"p99 shadow on / off: {shadow_on['p99_ms'] / shadow_off['p99_ms']:.2f}x")
    for comparison in summary:
        print(f"shadow summary: {comparison}")


if __name__ == "__main__":
    main()
