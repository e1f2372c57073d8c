"""The compose topology brought up for real, as far as the roles exist today.

docker-compose.yml + docker-compose.cpu.yml + tests/deploy/compose-local.yml (PostgreSQL and
Prometheus from Debian's packages: no image registry here) on compose's own network: PostgreSQL
becomes healthy, the control plane's start step (``tfsgate db upgrade``) migrates it, the CPU
Triton from tfsgate's image answers at the name ``triton`` and Prometheus finds and scrapes it by
DNS. The gateway and control-plane roles join this test when they land (issue 10).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import docker
from tests.support.servers import free_port
from tests.support.triton_models import write_doubler

pytestmark = pytest.mark.docker

FILES = ["docker-compose.yml", "docker-compose.cpu.yml", "tests/deploy/compose-local.yml"]
SERIES = docker.REPO / "deploy" / "grafana" / "series.txt"
# Run inside the triton-cpu container (its venv has tritonclient): load with the repository key
# as the control plane will, then infer a few times so Triton's per-model series exist.
LOAD_AND_INFER = """
import os, numpy as np, tritonclient.grpc as g
c = g.InferenceServerClient("127.0.0.1:8001")
key = {"triton-grpc-protocol-tfsgate-repository-key": os.environ["KEY"]}
c.load_model("doubler", headers=key)
x = g.InferInput("x", [1, 1], "FP32")
x.set_data_from_numpy(np.array([[2.0]], dtype=np.float32))
for _ in range(3):
    assert c.infer("doubler", [x]).as_numpy("y").tolist() == [[4.0]]
"""


@pytest.fixture(scope="module")
def topology(tfsgate_image: docker.BuiltImage) -> Iterator[docker.ComposeProject]:
    if docker.compose_command() is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    tag = tfsgate_image.tag.split(":", 1)[1]
    repository_key = secrets.token_hex(16)
    project = docker.ComposeProject(
        f"tfsgate-test-{os.getpid()}",  # concurrent sessions (CI, developers) never collide
        FILES,
        {
            "TFSGATE_TAG": tag,  # the session's image: compose builds nothing of tfsgate's
            "TFSGATE_BASE_IMAGE": docker.LOCAL_BASE,
            "TFSGATE_BUILD_NETWORK": "host",
            "TFSGATE_ADMIN_TOKEN": secrets.token_hex(16),
            "TRITON_REPOSITORY_KEY": repository_key,
            "TFSGATE_DB_PASSWORD": secrets.token_hex(16),
            "PROMETHEUS_PORT": str(free_port()),
            "TFSGATE_GRPC_PORT": str(free_port()),
            "TFSGATE_REST_PORT": str(free_port()),
            "TFSGATE_ADMIN_PORT": str(free_port()),
            **docker.pip_build_args(),
        },
    )
    project.run("build", "postgres", "prometheus", timeout=900)
    try:
        project.run("up", "-d", "--no-build", "postgres", "triton-cpu", "prometheus")
        project.wait_healthy(["postgres", "triton-cpu"])
        yield project
    finally:
        project.run("down", "-v", "--remove-orphans", check=False)


def promql(project: docker.ComposeProject, query: str) -> str:
    result = docker.docker(
        "exec",
        project.container("prometheus"),
        "promtool",
        "query",
        "instant",
        "http://127.0.0.1:9090",
        query,
        check=False,
    )
    return result.stdout


def test_control_plane_start_step_migrates_postgres(topology: docker.ComposeProject) -> None:
    """The control plane's first command, with its environment, against compose's PostgreSQL."""
    run = ["run", "--rm", "--no-deps", "--entrypoint", "tfsgate", "control-plane", "db"]
    topology.run(*run, "upgrade", timeout=180)
    current = topology.run(*run, "current", timeout=180).stdout
    assert "@postgres:5432/tfsgate" in current and "(at head)" in current, current
    assert "***" in current  # the password is redacted


def test_prometheus_scrapes_triton_found_by_dns(topology: docker.ComposeProject) -> None:
    deadline = time.monotonic() + 90
    answer = ""
    while time.monotonic() < deadline:
        answer = promql(topology, 'up{job="triton"}')
        if "=> 1 @" in answer:
            break
        time.sleep(2)
    assert "=> 1 @" in answer, (
        answer + topology.run("logs", "prometheus", check=False).stdout[-3000:]
    )
    assert 'job="triton"' in promql(topology, "nv_cpu_memory_used_bytes")


def triton_series(gpu: bool) -> list[str]:
    """series.txt's Triton series (with or without the ones only a GPU host exposes)."""
    rows = [line.split("\t") for line in SERIES.read_text().splitlines() if line[:1] not in "#"]
    return [row[0] for row in rows if "triton" in row[1].split(",") and (gpu or row[3] != "gpu")]


def test_every_triton_series_the_dashboards_query_is_scraped(
    topology: docker.ComposeProject, tmp_path: Path
) -> None:
    """The Triton part of the dashboards' scrape check (GPU series need a GPU host)."""
    triton = topology.container("triton-cpu")
    docker.docker("cp", str(write_doubler(tmp_path)), f"{triton}:/model_repository/")
    docker.docker(
        "exec",
        "-e",
        f"KEY={topology.env['TRITON_REPOSITORY_KEY']}",
        triton,
        "python",
        "-c",
        LOAD_AND_INFER,
        timeout=180,
    )
    expected = triton_series(gpu=False)
    assert "nv_inference_queue_duration_us" in expected
    missing = expected
    deadline = time.monotonic() + 90  # a scrape every 15 s
    while missing and time.monotonic() < deadline:
        missing = [name for name in missing if 'job="triton"' not in promql(topology, name)]
        time.sleep(3)
    assert not missing, f"not scraped from Triton: {missing}"
