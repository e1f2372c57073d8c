"""The production topology brought up for real: ``docker compose up`` on the CPU variant.

docker-compose.yml + docker-compose.cpu.yml + tests/deploy/compose-local.yml (PostgreSQL and
Prometheus from Debian's packages: no image registry here) on compose's own network: PostgreSQL,
the control plane (migrations as its start step), a separate Triton container (tfsgate's image,
repository API restricted by key), two gateway replicas and Prometheus with the checked-in
scrape configuration. Through them: TF Serving's curl and the official gRPC client on each
gateway, promote and rollback through the admin API reaching both gateways, every Prometheus
target up, every dashboard panel's query answering, and the Triton container killed and
recovered. The times are printed at the end of the session (tests/deploy/conftest.py).

Only published ports on the host's loopback are used from here; the containers talk on
compose's network.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.support import docker
from tests.support.dashboards import gpu_only, panel_queries
from tests.support.models import cached_model, model_config
from tests.support.servers import free_port
from tests.support.waiting import wait_for
from tfsgate.core import protos

pytestmark = pytest.mark.docker

FILES = ["docker-compose.yml", "docker-compose.cpu.yml", "tests/deploy/compose-local.yml"]
SERVICES = ["postgres", "triton-cpu", "control-plane", "gateway", "gateway-2", "prometheus"]
MODEL = "half_plus_two"
# TF Serving's quickstart body, and what each version answers to it: 0.5x + 2, then 0.5x + 3.
QUICKSTART = b'{"instances": [1.0, 2.0, 5.0]}'
ANSWERS = {1: [2.5, 3.0, 4.5], 2: [3.5, 4.0, 5.5]}
# deploy/prometheus/prometheus.yml scrapes every 15 s: Grafana's $__rate_interval is 4 scrapes.
RATE_INTERVAL = "1m"
JOBS = {"tfsgate-gateway": 2, "tfsgate-control-plane": 1, "triton": 1}


@dataclass(frozen=True)
class Gateway:
    service: str
    rest_url: str
    grpc_target: str


@dataclass
class Topology:
    project: docker.ComposeProject
    gateways: list[Gateway]
    admin_url: str
    admin_token: str
    prometheus_url: str

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.request(
            method,
            f"{self.admin_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=60,
        )
        assert answer.status_code == 200, (method, path, answer.status_code, answer.text)
        return answer.json()

    def promql(self, query: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": query})
        assert answer.status_code == 200, (query, answer.text)
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def logs(self, *services: str) -> str:
        return self.project.run("logs", "--tail", "80", *services, check=False).stdout[-12000:]


def predict(gateway: Gateway, path: str = "", timeout: float = 30) -> httpx.Response:
    """TF Serving's REST predict with the quickstart's body (path: /versions/N, /labels/L)."""
    return httpx.post(
        f"{gateway.rest_url}/v1/models/{MODEL}{path}:predict", content=QUICKSTART, timeout=timeout
    )


def answered_version(gateway: Gateway, path: str) -> int | None:
    """The version whose answer the gateway gives on ``path``, None while it cannot answer."""
    with contextlib.suppress(httpx.HTTPError):
        answer = predict(gateway, path, timeout=5)
        if answer.status_code == 200:
            predictions = answer.json()["predictions"]
            return next((v for v, values in ANSWERS.items() if values == predictions), -1)
    return None


def grpc_predict(gateway: Gateway, version: int | None = None) -> Any:
    """The official tensorflow-serving-api client's Predict, x = [[2.0]]."""
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    if version is not None:
        request.model_spec.version.value = version
    tensor = request.inputs["x"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.append(2.0)
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(request, timeout=30)


def write_models(root: Path, cache: Path | None) -> Path:
    """./models as the compose file expects it: two versions and a models.config serving both."""
    cached_model("write_half_plus_two", root / MODEL / "1", cache)
    cached_model("write_half_plus_three", root / MODEL / "2", cache)
    (root / "models.config").write_text(model_config((MODEL, Path("/models") / MODEL)))
    return root


@pytest.fixture(scope="module")
def topology(
    tfsgate_image: docker.BuiltImage,
    tmp_path_factory: pytest.TempPathFactory,
    model_cache: Path | None,
) -> Iterator[Topology]:
    if docker.compose_command() is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    models = write_models(tmp_path_factory.mktemp("compose-models"), model_cache)
    ports = {
        name: free_port()
        for name in (
            "TFSGATE_GRPC_PORT",
            "TFSGATE_REST_PORT",
            "TFSGATE_GATEWAY2_GRPC_PORT",
            "TFSGATE_GATEWAY2_REST_PORT",
            "TFSGATE_ADMIN_PORT",
            "PROMETHEUS_PORT",
        )
    }
    token = secrets.token_hex(16)
    project = docker.ComposeProject(
        f"tfsgate-test-{os.getpid()}",  # concurrent sessions (CI, developers) never collide
        FILES,
        {
            "TFSGATE_TAG": tfsgate_image.tag.split(":", 1)[1],  # compose builds none of tfsgate's
            "TFSGATE_BASE_IMAGE": docker.LOCAL_BASE,
            "TFSGATE_BUILD_NETWORK": "host",
            "TFSGATE_MODELS_DIR": str(models),
            "TFSGATE_ADMIN_TOKEN": token,
            "TRITON_REPOSITORY_KEY": secrets.token_hex(16),
            "TFSGATE_DB_PASSWORD": secrets.token_hex(16),
            **{name: str(port) for name, port in ports.items()},
            **docker.pip_build_args(),
        },
    )
    project.run("build", "postgres", "prometheus", timeout=900)
    topology = Topology(
        project,
        [
            Gateway(
                "gateway",
                f"http://127.0.0.1:{ports['TFSGATE_REST_PORT']}",
                f"127.0.0.1:{ports['TFSGATE_GRPC_PORT']}",
            ),
            Gateway(
                "gateway-2",
                f"http://127.0.0.1:{ports['TFSGATE_GATEWAY2_REST_PORT']}",
                f"127.0.0.1:{ports['TFSGATE_GATEWAY2_GRPC_PORT']}",
            ),
        ],
        f"http://127.0.0.1:{ports['TFSGATE_ADMIN_PORT']}/v1/admin",
        token,
        f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}",
    )
    try:
        started = time.monotonic()
        project.run("up", "-d", "--no-build", *SERVICES, timeout=600)
        deadline = started + 600
        while answered_version(topology.gateways[0], "/versions/1") != 1:
            if time.monotonic() > deadline:
                pytest.fail(f"no prediction after 600 s:\n{topology.logs()}")
            time.sleep(0.2)
        docker.measured("docker compose up to the first prediction", time.monotonic() - started)
        yield topology
    finally:
        project.run("down", "-v", "--remove-orphans", check=False)


def test_tf_serving_clients_through_each_gateway(topology: Topology) -> None:
    """TF Serving's quickstart curl and the official gRPC client, on both replicas."""
    for gateway in topology.gateways:
        wait_for(lambda g=gateway: answered_version(g, "/versions/2") == 2, 120, gateway.service)
        curl = subprocess.run(
            [
                "curl",
                "-sS",
                "-d",
                QUICKSTART.decode(),
                "-X",
                "POST",
                f"{gateway.rest_url}/v1/models/{MODEL}/versions/1:predict",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert curl.stdout.replace(" ", "") == '{"predictions":[2.5,3.0,4.5]}', curl.stdout
        for version, expected in ((1, 3.0), (2, 4.0)):
            response = grpc_predict(gateway, version)
            assert list(response.outputs["y"].float_val) == [expected]
            assert response.model_spec.version.value == version


def test_control_plane_migrated_postgres_at_start(topology: Topology) -> None:
    """The start step ran: the catalog in compose's PostgreSQL is at the migrations' head."""
    run = ["run", "--rm", "--no-deps", "--entrypoint", "tfsgate", "control-plane", "db"]
    current = topology.project.run(*run, "current", timeout=180).stdout
    assert "@postgres:5432/tfsgate" in current and "(at head)" in current, current
    assert "***" in current  # the password is redacted


def reach_every_gateway(topology: Topology, change: str, version: int) -> float:
    """Seconds from the admin call until every gateway answers ``stable`` with ``version``."""
    started = time.monotonic()
    if change == "rollback":
        topology.admin("POST", f"/models/{MODEL}/rollback")
    else:
        topology.admin("POST", f"/models/{MODEL}/promote", {"version": version})
    pending = {g.service: g for g in topology.gateways}
    reached: dict[str, float] = {}
    while pending and time.monotonic() - started < 60:
        for name, gateway in list(pending.items()):
            if answered_version(gateway, "/labels/stable") == version:
                reached[name] = time.monotonic() - started
                del pending[name]
    assert not pending, f"{change} to {version} not seen by {sorted(pending)} after 60 s"
    return max(reached.values())


def test_promote_and_rollback_reach_both_gateways(topology: Topology) -> None:
    stable = topology.admin("GET", f"/models/{MODEL}/labels")["labels"].get("stable")
    if stable != 1:
        reach_every_gateway(topology, "promote", 1)
    delays = {
        "promote 2": reach_every_gateway(topology, "promote", 2),
        "rollback to 1": reach_every_gateway(topology, "rollback", 1),
    }
    for change, seconds in delays.items():
        docker.measured(f"{change}: admin call until both gateways answer with it", seconds)
    # Every later answer agrees: no gateway flips back.
    for gateway in topology.gateways:
        assert [answered_version(gateway, "/labels/stable") for _ in range(5)] == [1] * 5


def wait_targets_up(topology: Topology, timeout: float = 120) -> dict[str, int]:
    """Jobs -> targets up, once Prometheus has every expected target up (DNS refresh 15 s)."""
    up: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up = {}
        with contextlib.suppress(httpx.HTTPError):
            for sample in topology.promql("up"):
                if sample["value"][1] == "1":
                    job = sample["metric"]["job"]
                    up[job] = up.get(job, 0) + 1
        if up == JOBS:
            return up
        time.sleep(2)
    pytest.fail(f"targets up {up}, expected {JOBS}:\n{topology.logs('prometheus')}")


def test_prometheus_reports_every_target_up(topology: Topology) -> None:
    """Both gateway replicas, the control plane and Triton, found by DNS and scraped."""
    assert wait_targets_up(topology) == JOBS
    down = topology.promql("up == 0")
    assert down == [], down


def traffic(topology: Topology) -> None:
    """What the panels show: labelled and versioned predicts over both protocols, a refusal."""
    topology.admin("PUT", f"/models/{MODEL}/labels/canary", {"version": 2})
    if topology.admin("GET", f"/models/{MODEL}/labels")["labels"].get("stable") is None:
        topology.admin("POST", f"/models/{MODEL}/promote", {"version": 1})
    for gateway in topology.gateways:
        wait_for(lambda g=gateway: answered_version(g, "/labels/canary") == 2, 30, "canary")
        for path in ("", "/labels/stable", "/labels/canary", "/versions/1", "/versions/2"):
            assert predict(gateway, path).status_code == 200
        grpc_predict(gateway)
        for label in ("stable", "canary"):  # routed through each arm, then INVALID_ARGUMENT
            refused = httpx.post(
                f"{gateway.rest_url}/v1/models/{MODEL}/labels/{label}:predict",
                json={"inputs": {"no_such_input": [1.0]}},
                timeout=30,
            )
            assert refused.status_code == 400, refused.text


def test_every_dashboard_query_returns_series(topology: Topology) -> None:
    """Each panel's PromQL as Grafana sends it, against the compose Prometheus.

    The GPU panels (nv_gpu_*) are left out: a CPU Triton exposes no GPU series."""
    wait_targets_up(topology)
    traffic(topology)
    queries = panel_queries(MODEL, RATE_INTERVAL)
    skipped = [(board, title) for board, title, expr in queries if gpu_only(expr)]
    assert skipped, "the Triton dashboard's GPU panels"
    # Two scrapes after the traffic at the most (15 s apart): rates need two samples.
    empty = [(b, t, e) for b, t, e in queries if not gpu_only(e)]
    deadline = time.monotonic() + 120
    while empty and time.monotonic() < deadline:
        time.sleep(5)
        traffic(topology)
        empty = [(b, t, e) for b, t, e in empty if not topology.promql(e)]
    assert not empty, "no series:\n" + "\n".join(f"{b} / {t}: {e}" for b, t, e in empty)
    print(f"GPU-only panels not checked on a CPU Triton: {sorted(set(skipped))}")


def test_triton_killed_and_recovered(topology: Topology) -> None:
    """Triton's process dies (SIGKILL from the host): Docker's restart policy brings the
    container back, empty (explicit model control); the gateways answer 503 UNAVAILABLE
    meanwhile, every call within the client's 5 s, and the control plane loads the versions
    again, until both gateways predict."""
    project = topology.project
    for gateway in topology.gateways:
        assert answered_version(gateway, "/versions/1") == 1
    container = project.container("triton-cpu")
    restarts = int(docker.docker("inspect", "--format", "{{.RestartCount}}", container).stdout)
    pid = int(docker.docker("inspect", "--format", "{{.State.Pid}}", container).stdout)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    codes: dict[str, set[int]] = {g.service: set() for g in topology.gateways}
    unanswered: dict[str, list[str]] = {g.service: [] for g in topology.gateways}
    recovered: dict[str, float] = {}
    while len(recovered) < len(topology.gateways) and time.monotonic() - killed < 300:
        for gateway in topology.gateways:
            if gateway.service in recovered:
                continue
            try:
                answer = predict(gateway, "/versions/1", timeout=5)
            except httpx.HTTPError as exc:
                # A call left waiting on the vanished Triton (its name stops resolving,
                # its address drops the handshake) instead of failing UNAVAILABLE.
                unanswered[gateway.service].append(f"{time.monotonic() - killed:.1f} s: {exc!r}")
                continue
            codes[gateway.service].add(answer.status_code)
            if answer.status_code == 200 and 503 in codes[gateway.service]:
                recovered[gateway.service] = time.monotonic() - killed
            elif answer.status_code not in (200, 503):
                pytest.fail(f"{gateway.service}: {answer.status_code} {answer.text}")
        time.sleep(0.05)
    assert len(recovered) == len(topology.gateways), (codes, topology.logs("control-plane"))
    assert not any(unanswered.values()), f"calls unanswered within 5 s: {unanswered}"
    after = int(docker.docker("inspect", "--format", "{{.RestartCount}}", container).stdout)
    assert after == restarts + 1  # the same container, restarted by its policy
    for gateway in topology.gateways:
        assert answered_version(gateway, "/versions/2") == 2
    docker.measured(
        "Triton killed until both gateways predict again (restart + reload)",
        max(recovered.values()),
    )
