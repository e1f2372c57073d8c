"""What every section of ``make bench`` measures with: the ``Plan`` (how long, how many clients) and
``Bench`` (the example models, the main ``tfsgate serve``, one measured point with the CPU of the
gateway and of Triton around it, tfsgate and Triton direct in alternating windows). The sections
are in ``bench/sections/``; ``bench/run.py`` runs them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from bench import loadgen
from bench.bodies import (
    MODEL_INFER_PATH,
    PREDICT_PATH,
    Bodies,
    Case,
    unframe,
)
from bench.procs import (
    ROOT,
    Serve,
    alive,
    children_cpu_seconds,
    cpu_seconds,
    group_cpu_seconds,
    machine_busy_seconds,
    prometheus_sum,
    shown,
    spawn_serve,
    tree_cpu_seconds,
    wait_http,
    wait_predict,
)
from tfsgate.core import protos

HALF_PLUS_TWO_X = np.array([[1.0], [2.0], [5.0]], np.float32)
HALF_PLUS_TWO_Y = [2.5, 3.0, 4.5]
# The supervisor's lines (control_plane/triton/supervisor.py): how Triton ended.
_TRITON_ENDED = re.compile(r"tritonserver (?:exited \((.*)\)|pid \d+ (hung \(.*\))); restarting it")
# A hung Triton is replaced once the supervisor's health probes have missed (about 10 s).
HUNG_WAIT = 40.0


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
    rollout_seconds: float  # on each side: steady, and with the cycles
    rollout_windows: int  # the sides alternate in this many pairs of windows
    pair_windows: int  # Triton direct and tfsgate alternate in this many windows each per point

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, 2, 1, (1, 16, 64), 32, 2, (1, 16384), 4, 2, 4, 8, 4, 2, 2)
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
            rollout_windows=4,
            pair_windows=4,
        )


@dataclass(frozen=True)
class Target:
    """What one side of a point loads: ``name`` is tfsgate, triton or another server, whose
    process tree's CPU is read when ``server_pid`` is given."""

    name: str
    url: str
    body: Path
    server_pid: int | None = None


@dataclass(frozen=True)
class _Taken:
    """One window's run and what it cost (seconds of CPU)."""

    window: loadgen.Window
    gateway_cpu: float
    triton_cpu: float
    server_cpu: float
    busy: float  # the machine's, all processes
    mine: float  # the load generator's (this process's children)
    capacity: float  # the window's time times the cores
    began: float  # time.time() at its start
    counted: dict[str, float]  # the servers' counters (``_counters``) over the window


class Bench:
    def __init__(self, plan: Plan, work: Path) -> None:
        self.plan = plan
        self.work = work
        self.bodies_dir = work / "bodies"
        self.results: dict[str, Any] = {"commands": {}}
        self.serve: Serve | None = None
        self.log_lines: list[str] = []
        # The Triton models loaded once the serve was up (a restarted Triton is waited for until
        # it has them again), and what a section changed on Triton that a restart would undo.
        self.triton_models: set[str] = set()
        self.on_triton_restart: list[Callable[[], None]] = []

    def say(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        self.log_lines.append(line)
        print(line, flush=True)

    def skip(self, section: str, key: str, reason: str) -> None:
        """A section this machine cannot measure (a tool missing or not permitted): the report
        says why from ``results[key]``."""
        self.say(f"{section} skipped: {reason}")
        self.results[key] = {"skipped": reason}

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

    # ---- the main server
    def start_main(self, config: Path, others: tuple[str, ...] = ("mlp", "scale")) -> Serve:
        """``tfsgate serve`` on ``config``, up once half_plus_two answers and ``others`` exist."""
        serve = spawn_serve(self.work / "home", [f"--model_config_file={config}"], admin=True)
        self.serve = serve
        wait_predict(serve, {"instances": HALF_PLUS_TWO_X.tolist()})
        serve.endpoints = self._endpoints_file()
        for model in others:
            wait_http(f"{serve.rest_url}/v1/models/{model}")
        self.triton_models = self._triton_ready_models(serve.endpoints["http_url"])
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

        ``kind`` is rest or grpc; ``target`` tfsgate, triton or another server (``server_pid``:
        the CPU of its process and children is recorded as ``server_cpu_us``).
        """
        return self.alternate(kind, [Target(target, url, body, server_pid)], clients, seconds, 1)[0]

    def alternate(
        self, kind: str, targets: list[Target], clients: int, seconds: float, windows: int
    ) -> list[dict[str, Any]]:
        """Each target warmed up, then ``windows`` rounds of one window per target in turn, each
        ``seconds / windows`` long; each target's point pools its windows (requests, time, errors
        and CPU summed, percentiles over every request of them). One run per target, one after
        the other, read the host's drift between them as a difference of the targets: this
        machine's load from outside the benchmark moved from 8 % to 29 % between Triton
        direct's run and tfsgate's at one point (0.43x, against 0.79-1.00x in other runs)."""
        each = seconds / windows
        loads = {target.name: self._load(kind, target, clients, each) for target in targets}
        for target in targets:
            loads[target.name](self.plan.warmup)
        taken: dict[str, list[_Taken]] = {target.name: [] for target in targets}
        counters = self._settled_counters()
        for _ in range(windows):
            for target in targets:
                window, counters = self._window(loads[target.name], target, each, counters)
                taken[target.name].append(window)
        return [self._point(kind, target, clients, taken[target.name]) for target in targets]

    def _load(
        self, kind: str, target: Target, clients: int, seconds: float
    ) -> Callable[[float], loadgen.Window]:
        """A run of the load generator for ``duration`` seconds; its command for ``seconds`` goes to
        the report."""
        if kind == "rest":
            script = loadgen.write_wrk_script(target.body, target.body.with_suffix(".lua"))
            command = loadgen.wrk_command(target.url, script, clients, seconds)
            self.results["commands"].setdefault(f"{kind} {target.name}", shown(command))
            return lambda duration: loadgen.wrk_window(target.url, script, clients, duration)
        # By count, nothing cancelled at the end (bench/loadgen.py), at the rate of the run
        # before (the warm-up's for the first window).
        log_file = self.work / "h2load.log"
        rate = 0.0

        def load(duration: float) -> loadgen.Window:
            nonlocal rate
            window = loadgen.h2load_answered_window(
                target.url, target.body, clients, duration, log_file, rate
            )
            rate = window.result.rps
            return window

        command = loadgen.h2load_command(target.url, target.body, clients, seconds, log_file, 1)
        command[command.index("-n1")] = f"-n<calls for {seconds:g} s at the rate of the run before>"
        self.results["commands"].setdefault(f"{kind} {target.name}", shown(command))
        return load

    def _window(
        self,
        load: Callable[[float], loadgen.Window],
        target: Target,
        seconds: float,
        before: dict[str, float],
    ) -> tuple[_Taken, dict[str, float]]:
        """One window of ``load``: the CPU of the gateway, of Triton's group and of the target's
        own server, the machine's, and the servers' counters (settled after: the next window's
        before)."""
        assert self.serve is not None
        pid, pgid = self.serve.process.pid, self.serve.triton_pgid
        server = target.server_pid
        gateway_cpu, triton_cpu = cpu_seconds(pid), group_cpu_seconds(pgid)
        server_cpu = tree_cpu_seconds(server) if server else 0.0
        busy, mine, began = machine_busy_seconds(), children_cpu_seconds(), time.monotonic()
        began_at = time.time()
        window = load(seconds)
        gateway_cpu = cpu_seconds(pid) - gateway_cpu
        triton_cpu = group_cpu_seconds(pgid) - triton_cpu
        server_cpu = tree_cpu_seconds(server) - server_cpu if server else 0.0
        busy, mine = machine_busy_seconds() - busy, children_cpu_seconds() - mine
        capacity = (time.monotonic() - began) * (os.cpu_count() or 1)
        after = self._settled_counters()  # read after the CPU: settling is not the window's
        counted = {key: after[key] - before[key] for key in after}
        taken = _Taken(
            window, gateway_cpu, triton_cpu, server_cpu, busy, mine, capacity, began_at, counted
        )
        return taken, after

    def _point(
        self, kind: str, target: Target, clients: int, taken: list[_Taken]
    ) -> dict[str, Any]:
        result = loadgen.pooled([t.window for t in taken])
        requests = max(1, result.requests)
        point: dict[str, Any] = result.as_dict()
        point["gateway_cpu_us"] = sum(t.gateway_cpu for t in taken) / requests * 1e6
        point["triton_cpu_us"] = sum(t.triton_cpu for t in taken) / requests * 1e6
        if target.server_pid:
            point["server_cpu_us"] = sum(t.server_cpu for t in taken) / requests * 1e6
        point["server_errors"] = sum(
            t.counted["gateway_not_ok"] + t.counted["triton_failed"] for t in taken
        )
        point["cancelled"] = sum(t.counted["cancelled"] for t in taken)
        # What the rest of the machine took meanwhile (other users' jobs): the noise gauge.
        others = sum(t.busy - t.mine - t.gateway_cpu - t.triton_cpu - t.server_cpu for t in taken)
        point["other_load"] = max(0.0, others) / sum(t.capacity for t in taken)
        if target.name == "tfsgate":
            point["gateway_ok"] = sum(t.counted["gateway_ok"] for t in taken)
        # The target's own CPU: the gateway's, Triton's group's, or its server's.
        field = {"tfsgate": "gateway_cpu", "triton": "triton_cpu"}.get(target.name, "server_cpu")
        cpu = point.get(f"{field}_us", 0.0)
        cpus = [getattr(t, field) / max(1, t.window.result.requests) * 1e6 for t in taken]
        if len(taken) > 1:
            point["windows"] = [
                {
                    "began": round(t.began, 3),
                    "requests": t.window.result.requests,
                    "rps": t.window.result.rps,
                    "p99_ms": t.window.result.p99_ms,
                    "cpu_us": window_cpu,
                }
                for t, window_cpu in zip(taken, cpus, strict=True)
            ]
        each = f" (windows {'/'.join(f'{c:.0f}' for c in cpus)})" if len(taken) > 1 else ""
        self.say(
            f"{kind:4} {target.name:8} {clients:3} clients: {result.rps:8.0f} req/s, p50 "
            f"{result.p50_ms:.2f} p99 {result.p99_ms:.2f} ms, {target.name} CPU {cpu:.0f} "
            f"us/req{each}, errors {result.errors}+{point['server_errors']:.0f}, other load "
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
        """Triton direct and tfsgate, same protocol and tensor, in alternating windows; measured
        again, once, when Triton died or hung meanwhile (tritonserver 2.51 has died of SIGSEGV
        and hung after a heap corruption at 64 clients here): the serve restarts it on new
        ports, and the report lists the restart."""
        assert self.serve is not None
        pid = int(self.serve.endpoints["pid"])
        try:
            point = self._pair(case, bodies, kind, clients, seconds)
        except Exception:
            # Triton's metrics unanswered: dead, or hung until the supervisor replaces it.
            if not self.triton_restarted(pid, HUNG_WAIT):
                raise
        else:
            if not self.triton_restarted(pid):
                return point
        self.recover_triton(case, bodies, f"{kind}, {clients} clients")
        return self._pair(case, bodies, kind, clients, seconds)

    def _pair(
        self, case: Case, bodies: Bodies, kind: str, clients: int, seconds: float
    ) -> dict[str, Any]:
        urls = self.urls(case)
        targets = [
            Target(
                "triton",
                urls[f"{kind} triton"],
                bodies.triton_json if kind == "rest" else bodies.model_infer,
            ),
            Target(
                "tfsgate",
                urls[f"{kind} tfsgate"],
                bodies.rest if kind == "rest" else bodies.predict,
            ),
        ]
        triton, tfsgate = self.alternate(kind, targets, clients, seconds, self.plan.pair_windows)
        return {"clients": clients, "triton": triton, "tfsgate": tfsgate}

    # ---- a Triton that died mid-run
    def _endpoints_file(self) -> dict[str, Any]:
        """The serve's current ``endpoints.json`` (rewritten at each Triton start: read again
        when caught half-written)."""
        assert self.serve is not None
        path = self.serve.home / "triton" / "endpoints.json"
        for _ in range(50):
            with contextlib.suppress(ValueError):
                return dict(json.loads(path.read_text()))
            time.sleep(0.02)
        return dict(json.loads(path.read_text()))

    def triton_restarted(self, pid: int, wait: float = 0) -> bool:
        """The Triton ``pid`` that the last points ran against has died (and perhaps already
        been replaced by the serve's supervisor, which checks every half second), or is
        replaced within ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while int(self._endpoints_file()["pid"]) == pid and alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True

    @staticmethod
    def _triton_ready_models(http_url: str) -> set[str]:
        index = httpx.post(f"{http_url}/v2/repository/index", json={"ready": True}, timeout=10)
        index.raise_for_status()
        return {f"{m['name']}/{m['version']}" for m in index.json()}

    def recover_triton(self, case: Case, bodies: Bodies, point: str, timeout: float = 300) -> None:
        """Wait for the restarted Triton to hold every model it held before and for tfsgate to
        answer ``case`` through it, point the benchmark at its new ports, put back what a
        section had changed on Triton, and note the restart for the report."""
        assert self.serve is not None
        serve = self.serve
        old = int(serve.endpoints["pid"])
        began = time.monotonic()
        deadline = began + timeout
        current = self._endpoints_file()
        while int(current["pid"]) == old or not alive(int(current["pid"])):
            if time.monotonic() > deadline or serve.process.poll() is not None:
                raise RuntimeError(f"Triton was not restarted:\n{serve.log.read_text()[-3000:]}")
            time.sleep(0.2)
            current = self._endpoints_file()
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if self.triton_models <= self._triton_ready_models(current["http_url"]):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the restarted Triton did not load {self.triton_models}")
            time.sleep(0.2)
        serve.endpoints = current
        for put_back in self.on_triton_restart:
            put_back()
        wait_http(
            f"{serve.rest_url}/v1/models/{case.model}:predict",
            method="POST",
            body=json.loads(bodies.rest.read_text()),
        )
        ended = _TRITON_ENDED.findall(serve.log.read_text(errors="replace"))
        restart = {
            "at": time.strftime("%H:%M:%S"),
            "point": point,
            "ended": "".join(ended[-1]) if ended else "not logged",
            "seconds": round(time.monotonic() - began, 1),
        }
        self.results.setdefault("triton_restarts", []).append(restart)
        self.say(
            f"Triton (pid {old}) ended during {point} ({restart['ended']}); restarted as pid "
            f"{current['pid']} (waited {restart['seconds']} s for it): measuring the point again"
        )
