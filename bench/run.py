"""``make bench``: tfsgate, the embedded Triton's own endpoints and a naive server, on loopback.

Starts everything it measures from this checkout: example SavedModels (``tfsgate.examples``:
half_plus_two in two versions, the 3 x 1024 MLP, ``scale`` for payload sizes), a real
``tfsgate serve`` with its embedded tritonserver (whose own HTTP and gRPC ports are read from
``$TFSGATE_HOME/triton/endpoints.json``) and ``bench/naive_server.py``. Load comes from ``wrk``
(REST) and ``h2load`` (gRPC), one thread, N connections, each point measured back to back against
Triton direct, so the ratios come from one run. The gateway's CPU is utime+stime of the
``tfsgate serve`` process alone, from ``/proc``, over each run. Results go to a JSON file and
``bench/report.py`` turns them into ``docs/benchmarks.md`` and its plots.

``python -m bench.run [--quick] [--out docs/benchmarks.md]``; ``BENCH_QUICK=1`` for a smoke run.
One ``Bench`` class with one method per report section, in the report's order; it is long
because each section owns its setup (bodies, a naive server, a Triton config override).
Run it under ``flock /work/coord/heavy.lock`` on a shared machine (the Makefile target does when
that lock exists).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from bench import floors, loadgen, pyspy, report
from bench.bodies import (
    MODEL_INFER_PATH,
    PREDICT_PATH,
    Bodies,
    Case,
    unframe,
    write_bodies,
)
from bench.procs import (
    ROOT,
    Serve,
    children_cpu_seconds,
    cpu_seconds,
    free_port,
    group_cpu_seconds,
    machine_busy_seconds,
    memory_mb,
    prometheus_sum,
    shown,
    spawn,
    spawn_serve,
    stop,
    tree_cpu_seconds,
    wait_http,
    wait_port,
    wait_predict,
)
from tfsgate.core import protos

HALF_PLUS_TWO_X = np.array([[1.0], [2.0], [5.0]], np.float32)
HALF_PLUS_TWO_Y = [2.5, 3.0, 4.5]


@dataclass(frozen=True)
class Plan:
    """How long and how much: the full run fits ~15 min on 2 cores, ``quick`` about 3."""

    quick: bool
    seconds: float  # one measured sweep point
    warmup: float
    clients: tuple[int, ...]
    mlp_clients: int
    mlp_seconds: float
    payload_floats: tuple[int, ...]
    payload_clients: int
    payload_seconds: float
    rollout_cycles: int
    rollout_clients: int
    rollout_seconds: float

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, 2, 1, (1, 16, 64), 32, 2, (1, 16384), 4, 2, 4, 8, 4)
        return cls(
            False,
            seconds=8,
            warmup=1,
            clients=(1, 4, 16, 32, 64),
            mlp_clients=32,
            mlp_seconds=8,
            payload_floats=(1, 256, 16384, 65536, 262144),
            payload_clients=4,
            payload_seconds=5,
            rollout_cycles=20,
            rollout_clients=8,
            rollout_seconds=20,
        )


# -- the benchmark ---------------------------------------------------------------------------------
class Bench:
    def __init__(self, plan: Plan, work: Path) -> None:
        self.plan = plan
        self.work = work
        self.bodies_dir = work / "bodies"
        self.results: dict[str, Any] = {"commands": {}}
        self.serve: Serve | None = None
        self.log_lines: list[str] = []

    def say(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        self.log_lines.append(line)
        print(line, flush=True)

    # ---- models
    def models(self) -> dict[str, Path]:
        base = self.work / "models"
        wanted = {
            ("half_plus_two", 1): "half_plus_two",
            ("half_plus_two", 2): "half_plus_two",
            ("mlp", 1): "mlp",
            ("scale", 1): "scale",
        }
        for (name, version), kind in wanted.items():
            if not (base / name / str(version) / "saved_model.pb").exists():
                self.say(f"writing example model {name}/{version}")
                subprocess.run(
                    [sys.executable, "-m", "tfsgate.examples", str(base / name)]
                    + ["--version", str(version), "--kind", kind],
                    check=True,
                    capture_output=True,
                    cwd=ROOT,
                )
        return {name: base / name for name in ("half_plus_two", "mlp", "scale")}

    def model_config(self, models: dict[str, Path]) -> Path:
        """All versions of half_plus_two (promote/rollback needs two AVAILABLE)."""
        entries = []
        for name, path in models.items():
            policy = " model_version_policy { all {} }" if name == "half_plus_two" else ""
            entries.append(
                f'  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow"'
                f"{policy} }}"
            )
        config = self.work / "models.config"
        config.write_text("model_config_list {\n" + "\n".join(entries) + "\n}\n")
        return config

    # ---- cold start
    def cold_start(self, half_plus_two: Path) -> None:
        """Spawn -> first REST prediction: a fresh home (conversion included), then a restart."""
        body = {"instances": HALF_PLUS_TWO_X.tolist()}
        args = ["--model_name=half_plus_two", f"--model_base_path={half_plus_two}"]
        home = self.work / "home-cold"
        started = time.monotonic()
        serve = spawn_serve(home, args, admin=False)
        try:
            fresh = wait_predict(serve, body) - started
        finally:
            stop(serve.process)
        self.say(f"cold start, fresh home: {fresh:.2f} s")
        # Same home again: the catalog and the converted Triton models exist (a restart).
        started = time.monotonic()
        serve = self._respawn(serve, args)
        try:
            restart = wait_predict(serve, body) - started
            idle = memory_mb(serve.process.pid)
        finally:
            stop(serve.process)
        self.say(f"cold start, restart: {restart:.2f} s")
        self.results["cold_start"] = {"fresh_s": fresh, "restart_s": restart}
        self.results["memory_idle"] = idle

    def _respawn(self, old: Serve, args: list[str]) -> Serve:
        command_home = old.home
        grpc_port, rest_port = free_port(), free_port()
        command = [
            sys.executable,
            "-m",
            "tfsgate.cli",
            "serve",
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            "--admin_port=0",
            f"--home={command_home}",
            f"--model_repository={command_home / 'model_repository'}",
            "--host=127.0.0.1",
            *args,
        ]
        with open(old.log, "ab") as out:
            process = spawn(command, out)
        return Serve(process, command_home, grpc_port, rest_port, 0, old.log)

    # ---- the main server
    def start_main(self, config: Path) -> Serve:
        serve = spawn_serve(self.work / "home", [f"--model_config_file={config}"], admin=True)
        self.serve = serve
        wait_predict(serve, {"instances": HALF_PLUS_TWO_X.tolist()})
        serve.endpoints = json.loads((serve.home / "triton" / "endpoints.json").read_text())
        for model in ("mlp", "scale"):
            wait_http(f"{serve.rest_url}/v1/models/{model}")
        self.say(f"tfsgate serve up (pid {serve.process.pid}); Triton {serve.endpoints}")
        return serve

    # ---- one measured point
    def _counters(self) -> dict[str, float]:
        assert self.serve is not None
        serve = self.serve
        gateway = httpx.get(f"{serve.rest_url}/monitoring/prometheus/metrics", timeout=10).text
        triton = httpx.get(serve.endpoints["metrics_url"], timeout=10).text
        # A client that stops with requests in flight (h2load at the end of -D) cancels them:
        # counted apart, not as errors. Triton labels failures by reason since 24.x.
        return {
            "gateway_not_ok": prometheus_sum(
                gateway,
                "tfsgate_requests_total",
                lambda labels: labels.get("code") not in ("OK", "CANCELLED"),
            ),
            "gateway_ok": prometheus_sum(
                gateway, "tfsgate_requests_total", lambda labels: labels.get("code") == "OK"
            ),
            "cancelled": prometheus_sum(
                gateway, "tfsgate_requests_total", lambda labels: labels.get("code") == "CANCELLED"
            )
            + prometheus_sum(
                triton,
                "nv_inference_request_failure",
                lambda labels: labels.get("reason") == "CANCELED",
            ),
            "triton_failed": prometheus_sum(
                triton,
                "nv_inference_request_failure",
                lambda labels: labels.get("reason") != "CANCELED",
            ),
        }

    def _settled_counters(self) -> dict[str, float]:
        """Counters once requests the load generator abandoned have finished (at most 10 s)."""
        last = self._counters()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.2)
            current = self._counters()
            if current == last:
                break
            last = current
        return last

    def measure(
        self,
        kind: str,
        target: str,
        url: str,
        body: Path,
        clients: int,
        seconds: float,
        server_pid: int | None = None,
    ) -> dict[str, Any]:
        """Warm up, then one measured run; CPU of the gateway and of Triton's group around it.

        ``kind`` is rest or grpc; ``target`` tfsgate, triton or naive (``server_pid``: its CPU
        is recorded as ``server_cpu_us``).
        """
        assert self.serve is not None
        plan = self.plan
        log_file = self.work / "h2load.log"
        if kind == "rest":
            script = loadgen.write_wrk_script(body, body.with_suffix(".lua"))

            def load(duration: float) -> loadgen.LoadResult:
                return loadgen.run_wrk(url, script, clients, duration)

            command = loadgen.wrk_command(url, script, clients, seconds)
        else:

            def load(duration: float) -> loadgen.LoadResult:
                return loadgen.run_h2load(url, body, clients, duration, log_file)

            command = loadgen.h2load_command(url, body, clients, seconds, log_file)
        self.results["commands"].setdefault(f"{kind} {target}", shown(command))
        load(plan.warmup)
        before = self._settled_counters()
        pid = self.serve.process.pid
        gateway_cpu = cpu_seconds(pid)
        triton_cpu = group_cpu_seconds(self.serve.triton_pgid)
        server_cpu = cpu_seconds(server_pid) if server_pid else 0.0
        busy, mine, began = machine_busy_seconds(), children_cpu_seconds(), time.monotonic()
        result = load(seconds)
        gateway_cpu = cpu_seconds(pid) - gateway_cpu
        triton_cpu = group_cpu_seconds(self.serve.triton_pgid) - triton_cpu
        server_cpu = cpu_seconds(server_pid) - server_cpu if server_pid else 0.0
        busy = machine_busy_seconds() - busy
        mine = children_cpu_seconds() - mine + gateway_cpu + triton_cpu + server_cpu
        capacity = (time.monotonic() - began) * (os.cpu_count() or 1)
        after = self._settled_counters()
        point: dict[str, Any] = result.as_dict()
        requests = max(1, result.requests)
        point["gateway_cpu_us"] = gateway_cpu / requests * 1e6
        point["triton_cpu_us"] = triton_cpu / requests * 1e6
        if server_pid:
            point["server_cpu_us"] = server_cpu / requests * 1e6
        point["server_errors"] = (after["gateway_not_ok"] - before["gateway_not_ok"]) + (
            after["triton_failed"] - before["triton_failed"]
        )
        point["cancelled"] = after["cancelled"] - before["cancelled"]
        # What the rest of the machine took meanwhile (other users' jobs): the noise gauge.
        point["other_load"] = max(0.0, busy - mine) / capacity
        if target == "tfsgate":
            point["gateway_ok"] = after["gateway_ok"] - before["gateway_ok"]
        cpu = {"tfsgate": point["gateway_cpu_us"], "triton": point["triton_cpu_us"]}.get(
            target, point.get("server_cpu_us", 0.0)
        )
        self.say(
            f"{kind:4} {target:8} {clients:3} clients: {result.rps:8.0f} req/s, p50 "
            f"{result.p50_ms:.2f} p99 {result.p99_ms:.2f} ms, {target} CPU {cpu:.0f} us/req, "
            f"errors {result.errors}+{point['server_errors']:.0f}, other load "
            f"{point['other_load']:.0%}"
        )
        return point

    # ---- checks with the Python clients
    def check_grpc(self, bodies: Bodies, expect: list[float] | None) -> None:
        """One sample of each gRPC body through the official clients: grpc-status 0, and values."""
        assert self.serve is not None
        with grpc.insecure_channel(f"127.0.0.1:{self.serve.grpc_port}") as channel:
            stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = protos.predict_pb2.PredictRequest.FromString(
                unframe(bodies.predict.read_bytes())
            )
            answer = stub.Predict(request, timeout=30)
            values = list(next(iter(answer.outputs.values())).float_val)
            if expect is not None and values != expect:
                raise RuntimeError(f"tfsgate Predict answered {values}, expected {expect}")
        with grpc.insecure_channel(self.serve.endpoints["grpc_url"]) as channel:
            triton = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            infer = service_pb2.ModelInferRequest.FromString(
                unframe(bodies.model_infer.read_bytes())
            )
            reply = triton.ModelInfer(infer, timeout=30)
            values = np.frombuffer(reply.raw_output_contents[0], np.float32).tolist()
            if expect is not None and values != expect:
                raise RuntimeError(f"Triton ModelInfer answered {values}, expected {expect}")

    # ---- urls
    def urls(self, case: Case) -> dict[str, str]:
        assert self.serve is not None
        triton_http = self.serve.endpoints["http_url"]
        return {
            "rest tfsgate": f"{self.serve.rest_url}/v1/models/{case.model}:predict",
            "rest triton": f"{triton_http}/v2/models/{case.triton_model}/versions/"
            f"{case.version}/infer",
            "grpc tfsgate": f"http://127.0.0.1:{self.serve.grpc_port}{PREDICT_PATH}",
            "grpc triton": f"http://{self.serve.endpoints['grpc_url']}{MODEL_INFER_PATH}",
        }

    def pair(
        self, case: Case, bodies: Bodies, kind: str, clients: int, seconds: float
    ) -> dict[str, Any]:
        """Triton direct, then tfsgate, same protocol and tensor, back to back."""
        urls = self.urls(case)
        triton_body = bodies.triton_json if kind == "rest" else bodies.model_infer
        gateway_body = bodies.rest if kind == "rest" else bodies.predict
        return {
            "clients": clients,
            "triton": self.measure(
                kind, "triton", urls[f"{kind} triton"], triton_body, clients, seconds
            ),
            "tfsgate": self.measure(
                kind, "tfsgate", urls[f"{kind} tfsgate"], gateway_body, clients, seconds
            ),
        }

    # ---- sections
    def sweep(self) -> None:
        case = Case("half_plus_two", "half_plus_two__serving_default", 2, "x", "y", HALF_PLUS_TWO_X)
        bodies = write_bodies(case, self.bodies_dir)
        self.check_grpc(bodies, HALF_PLUS_TWO_Y)
        sweep: dict[str, list[dict[str, Any]]] = {"rest": [], "grpc": []}
        for clients in self.plan.clients:
            for kind in ("rest", "grpc"):
                sweep[kind].append(self.pair(case, bodies, kind, clients, self.plan.seconds))
        self.results["sweep"] = sweep
        assert self.serve is not None
        self.results["memory_loaded"] = memory_mb(self.serve.process.pid)

    def mlp(self, model_path: Path) -> None:
        plan = self.plan
        rng = np.random.default_rng(0)
        case = Case(
            "mlp", "mlp__serving_default", 1, "x", "output_0", rng.random((1, 1024), np.float32)
        )
        bodies = write_bodies(case, self.bodies_dir)
        self.check_grpc(bodies, None)
        section: dict[str, Any] = {"clients": plan.mlp_clients}
        for kind in ("rest", "grpc"):
            section[kind] = self.pair(case, bodies, kind, plan.mlp_clients, plan.mlp_seconds)
        section["naive"] = self.naive(model_path / "1", bodies)
        with self.batching_off(case.triton_model):
            section["batching_off"] = {
                kind: self.pair(case, bodies, kind, plan.mlp_clients, plan.mlp_seconds)
                for kind in ("rest", "grpc")
            }
        self.results["mlp"] = section

    def naive(self, version_dir: Path, bodies: Bodies) -> dict[str, Any]:
        port = free_port()
        log = self.work / "naive.log"
        command = [sys.executable, "-m", "bench.naive_server", "--model_name=mlp"]
        command += [f"--model_path={version_dir}", f"--port={port}"]
        with open(log, "wb") as out:
            process = spawn(command, out)
        self.results["commands"]["naive server"] = shown(command)
        url = f"http://127.0.0.1:{port}/v1/models/mlp:predict"
        try:
            wait_http(url, method="POST", body=json.loads(bodies.rest.read_text()))
            point = self.measure(
                "rest",
                "naive",
                url,
                bodies.rest,
                self.plan.mlp_clients,
                self.plan.mlp_seconds,
                server_pid=process.pid,
            )
        finally:
            stop(process)
        return point

    @contextlib.contextmanager
    def batching_off(self, triton_model: str) -> Iterator[None]:
        """Reload the Triton model with its own config minus ``dynamic_batching``, then restore.

        A config override through Triton's repository API: the same name and version keep
        serving, tfsgate's routing does not change.
        """
        assert self.serve is not None
        http = self.serve.endpoints["http_url"]
        original = httpx.get(f"{http}/v2/models/{triton_model}/config", timeout=30).json()
        plain = {k: v for k, v in original.items() if k != "dynamic_batching"}

        def load(config: dict[str, Any]) -> None:
            reply = httpx.post(
                f"{http}/v2/repository/models/{triton_model}/load",
                json={"parameters": {"config": json.dumps(config)}},
                timeout=300,
            )
            reply.raise_for_status()
            wait_http(f"{http}/v2/models/{triton_model}/ready")

        load(plain)
        self.say(f"{triton_model}: dynamic batching off")
        try:
            yield
        finally:
            load(original)
            self.say(f"{triton_model}: dynamic batching back on")

    def payload(self) -> None:
        plan = self.plan
        rng = np.random.default_rng(1)
        rows = []
        for floats in plan.payload_floats:
            array = rng.random((1, floats), np.float32)
            case = Case("scale", "scale__serving_default", 1, "x", "y", array)
            bodies = write_bodies(case, self.bodies_dir)
            self.check_grpc(bodies, None)
            row: dict[str, Any] = {"floats": floats, "bytes": floats * 4}
            row["json_bytes"] = bodies.rest.stat().st_size
            # A 1 MB JSON request takes about a second: longer runs for a few hundred samples.
            seconds = plan.payload_seconds * (2 if floats >= 65536 else 1)
            for kind in ("rest", "grpc"):
                row[kind] = self.pair(case, bodies, kind, plan.payload_clients, seconds)
            rows.append(row)
        self.results["payload"] = rows

    def profile(self) -> None:
        """py-spy on the gateway under 16 clients per protocol (separate runs: sampling costs)."""
        assert self.serve is not None
        case = Case("half_plus_two", "half_plus_two__serving_default", 2, "x", "y", HALF_PLUS_TWO_X)
        bodies = write_bodies(case, self.bodies_dir)
        urls = self.urls(case)
        seconds = self.plan.seconds
        profiles: dict[str, Any] = {}
        for kind in ("rest", "grpc"):
            output = self.work / f"pyspy-{kind}.txt"
            recorder = pyspy.start_record(self.serve.process.pid, seconds, output)
            command = pyspy.record_command(self.serve.process.pid, seconds, output)
            self.results["commands"].setdefault("profile", shown(command))
            time.sleep(0.5)  # py-spy attaches
            if kind == "rest":
                script = loadgen.write_wrk_script(bodies.rest, bodies.rest.with_suffix(".lua"))
                result = loadgen.run_wrk(urls["rest tfsgate"], script, 16, seconds)
            else:
                log_file = self.work / "h2load.log"
                result = loadgen.run_h2load(
                    urls["grpc tfsgate"], bodies.predict, 16, seconds, log_file
                )
            _, err = recorder.communicate(timeout=seconds + 60)
            if recorder.returncode != 0 or not output.exists():
                self.say(f"py-spy failed ({recorder.returncode}): {err.decode()[-500:]}")
                continue
            parsed = pyspy.parse_collapsed(output.read_text())
            profiles[kind] = {"clients": 16, "rps": result.rps, **parsed.as_dict()}
            top = ", ".join(f"{name} {share:.0%}" for name, share in parsed.by_package[:5])
            self.say(f"profile {kind}: {parsed.samples} samples; {top}")
        self.results["profile"] = profiles

    def workers(self) -> None:
        """``tfsgate gateway --gateway_workers`` 1 vs 2 beside the main serve (its catalog, its
        Triton through the routing feed), half_plus_two; CPU of the gateway's process tree."""
        assert self.serve is not None
        case = Case("half_plus_two", "half_plus_two__serving_default", 2, "x", "y", HALF_PLUS_TWO_X)
        bodies = write_bodies(case, self.bodies_dir)
        script = loadgen.write_wrk_script(bodies.rest, bodies.rest.with_suffix(".lua"))
        log_file = self.work / "h2load.log"
        seconds = self.plan.seconds
        catalog = f"sqlite:///{self.serve.home / 'catalog.db'}"
        rows: list[dict[str, Any]] = []
        for count in (1, 2):
            grpc_port, rest_port = free_port(), free_port()
            command = [sys.executable, "-m", "tfsgate.cli", "gateway", "--host=127.0.0.1"]
            command += [f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
            command += [f"--home={self.work / 'gateway-home'}", f"--database_url={catalog}"]
            command += [f"--gateway_workers={count}"]
            with open(self.work / "gateway.log", "ab") as out:
                process = spawn(command, out)
            self.results["commands"].setdefault(f"gateway, {count} workers", shown(command))
            rest_url = f"http://127.0.0.1:{rest_port}/v1/models/half_plus_two:predict"
            grpc_url = f"http://127.0.0.1:{grpc_port}{PREDICT_PATH}"
            try:
                _wait_workers(rest_url, count)
                for kind in ("rest", "grpc"):
                    for clients in (16, 64):
                        url, body = (
                            (rest_url, script) if kind == "rest" else (grpc_url, bodies.predict)
                        )
                        _load(kind, url, body, clients, self.plan.warmup, log_file)
                        used = tree_cpu_seconds(process.pid)
                        result = _load(kind, url, body, clients, seconds, log_file)
                        used = tree_cpu_seconds(process.pid) - used
                        row: dict[str, Any] = {"workers": count, "kind": kind, "clients": clients}
                        row.update(result.as_dict())
                        row["gateway_cpu_us"] = used / max(1, result.requests) * 1e6
                        rows.append(row)
                        self.say(
                            f"gateway x{count} {kind:4} {clients:2} clients: {result.rps:6.0f}"
                            f" req/s, p99 {result.p99_ms:.2f} ms,"
                            f" {row['gateway_cpu_us']:.0f} us/req, errors {result.errors}"
                        )
            finally:
                stop(process)
        self.results["workers"] = rows

    def floors(self) -> None:
        """Do-nothing servers of the libraries the front doors use, under the same load."""
        case = Case("half_plus_two", "half_plus_two__serving_default", 2, "x", "y", HALF_PLUS_TWO_X)
        bodies = write_bodies(case, self.bodies_dir)
        script = loadgen.write_wrk_script(bodies.rest, bodies.rest.with_suffix(".lua"))
        log_file = self.work / "h2load.log"
        seconds = max(2.0, self.plan.seconds / 2)
        rows: list[dict[str, Any]] = []
        for kind in floors.KINDS:
            port = free_port()
            command = [sys.executable, "-m", "bench.floors", kind, str(port)]
            with open(self.work / "floor.log", "wb") as out:
                process = spawn(command, out)
            self.results["commands"].setdefault("floor server", shown(command))
            grpc_door = kind.startswith("grpc")
            path = PREDICT_PATH if grpc_door else "/v1/models/half_plus_two:predict"
            url = f"http://127.0.0.1:{port}{path}"

            def load(clients: int, duration: float, url: str = url) -> loadgen.LoadResult:
                if url.endswith(PREDICT_PATH):
                    return loadgen.run_h2load(url, bodies.predict, clients, duration, log_file)
                return loadgen.run_wrk(url, script, clients, duration)

            try:
                wait_port(port)
                load(16, self.plan.warmup)
                for clients in (1, 16):
                    used = cpu_seconds(process.pid)
                    result = load(clients, seconds)
                    used = cpu_seconds(process.pid) - used
                    row = {"kind": kind, "clients": clients, **result.as_dict()}
                    row["server_cpu_us"] = used / max(1, result.requests) * 1e6
                    rows.append(row)
                    self.say(
                        f"floor {kind:20} {clients:2} clients: {result.rps:6.0f} req/s, "
                        f"{row['server_cpu_us']:.0f} us/req, errors {result.errors}"
                    )
            finally:
                stop(process)
        self.results["floors"] = rows

    def rollout(self) -> None:
        """p99 under promote/rollback cycles against the same load with none."""
        assert self.serve is not None
        plan = self.plan
        admin = f"http://127.0.0.1:{self.serve.admin_port}/v1/admin/models/half_plus_two"
        url = f"{self.serve.rest_url}/v1/models/half_plus_two/labels/stable:predict"
        body = self.bodies_dir / "rollout.rest.json"
        body.write_text(json.dumps({"instances": HALF_PLUS_TWO_X.tolist()}))
        script = loadgen.write_wrk_script(body, body.with_suffix(".lua"))
        with httpx.Client(timeout=60) as client:
            client.post(f"{admin}/promote", json={"version": 1}).raise_for_status()
            wait_http(url, method="POST", body=json.loads(body.read_text()))
            loadgen.run_wrk(url, script, plan.rollout_clients, plan.warmup)
            steady = loadgen.run_wrk(url, script, plan.rollout_clients, plan.rollout_seconds)
            command = loadgen.wrk_command(url, script, plan.rollout_clients, plan.rollout_seconds)
            self.results["commands"]["rest rollout"] = shown(command)
            wrk = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            admin_ms: list[float] = []
            failures = 0
            time.sleep(0.5)
            interval = (plan.rollout_seconds - 1.5) / plan.rollout_cycles
            for cycle in range(plan.rollout_cycles):
                due = time.monotonic() + interval
                for path, payload in (("promote", {"version": 2}), ("rollback", {})):
                    began = time.perf_counter()
                    reply = client.post(f"{admin}/{path}", json=payload)
                    admin_ms.append((time.perf_counter() - began) * 1000)
                    if reply.status_code != 200:
                        failures += 1
                        self.say(f"cycle {cycle}: {path} answered {reply.status_code} {reply.text}")
                    time.sleep(max(0.0, (due - time.monotonic()) / 2))
            out, err = wrk.communicate(timeout=plan.rollout_seconds + 60)
            cycles = loadgen.parse_wrk(out)
        self.results["rollout"] = {
            "clients": plan.rollout_clients,
            "cycles": plan.rollout_cycles,
            "steady": steady.as_dict(),
            "during": cycles.as_dict(),
            "admin_failures": failures,
            "admin_p50_ms": float(np.percentile(admin_ms, 50)),
            "admin_max_ms": max(admin_ms),
        }
        self.say(
            f"rollout: steady p99 {steady.p99_ms:.2f} ms, during {plan.rollout_cycles} cycles "
            f"{cycles.p99_ms:.2f} ms, errors {cycles.errors}, admin failures {failures}"
        )

    # ---- the machine
    def machine(self) -> dict[str, Any]:
        cpu = "unknown"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        versions = {
            name: importlib.metadata.version(name)
            for name in ("tensorflow", "grpcio", "uvicorn", "orjson", "numpy", "tritonclient")
        }
        versions["python"] = platform.python_version()
        versions["wrk"] = _first_line(["wrk", "-v"])
        versions["h2load"] = _first_line(["h2load", "--version"])
        if self.serve is not None:
            server = httpx.get(f"{self.serve.endpoints['http_url']}/v2", timeout=10).json()
            versions["tritonserver"] = server.get("version", "?")
        commit = _first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"])
        return {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(),
            "os": _os_name(),
            "commit": commit,
            "versions": versions,
        }


def _load(
    kind: str, url: str, body: Path, clients: int, seconds: float, log_file: Path
) -> loadgen.LoadResult:
    """wrk (``body``: its Lua script) or h2load (``body``: the framed request)."""
    if kind == "rest":
        return loadgen.run_wrk(url, body, clients, seconds)
    return loadgen.run_h2load(url, body, clients, seconds, log_file)


def _wait_workers(url: str, count: int, timeout: float = 120) -> None:
    """Until ``count`` gateway processes answer (request ids carry a per-process prefix; each new
    connection goes to one of them), so no worker is still starting while measured."""
    body = {"instances": HALF_PLUS_TWO_X.tolist()}
    wait_http(url, method="POST", body=body)
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(seen)} of {count} gateway workers answered at {url}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.post(url, json=body, timeout=5)
            if answer.status_code == 200:
                seen.add(answer.headers.get("x-request-id", "").split("-")[0])
        time.sleep(0.05)


def _first_line(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


SECTIONS = ("cold_start", "sweep", "mlp", "payload", "rollout", "profile", "workers", "floors")


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
        bench.cold_start(models["half_plus_two"])
    serve = bench.start_main(bench.model_config(models))
    try:
        bench.results["machine"] = bench.machine()
        if "sweep" in sections:
            bench.sweep()
        if "mlp" in sections:
            bench.mlp(models["mlp"])
        if "payload" in sections:
            bench.payload()
        if "rollout" in sections:
            bench.rollout()
        if "profile" in sections:
            bench.profile()
        if "workers" in sections:
            try:
                bench.workers()
            except Exception as exc:  # noqa: BLE001 - the runs before it are kept and reported
                bench.say(f"workers section failed: {exc!r}")
        if "floors" in sections:
            bench.floors()
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
