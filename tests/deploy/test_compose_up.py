"""The compose topology brought up for real, as far as the roles exist today.

docker-compose.yml + docker-compose.cpu.yml + tests/deploy/compose-local.yml (PostgreSQL and
Prometheus from Debian's packages: no image registry here) on compose's own network: PostgreSQL
becomes healthy, the control plane's start step (``tfsgate db upgrade``) migrates it, the CPU
Triton from tfsgate's image answers at the name ``triton`` and Prometheus finds and scrapes it by
DNS. The gateway and control-plane roles join this test when they land (issue 10).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from tests.support import docker
from tests.support.servers import free_port

pytestmark = pytest.mark.docker

FILES = ["docker-compose.yml", "docker-compose.cpu.yml", "tests/deploy/compose-local.yml"]


@pytest.fixture(scope="module")
def topology(tfsgate_image: docker.BuiltImage) -> Iterator[docker.ComposeProject]:
    if docker.compose_command() is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    tag = tfsgate_image.tag.split(":", 1)[1]
    project = docker.ComposeProject(
        "tfsgate-test",
        FILES,
        {
            "TFSGATE_TAG": tag,  # the session's image: compose builds nothing of tfsgate's
            "TFSGATE_BASE_IMAGE": docker.LOCAL_BASE,
            "TFSGATE_BUILD_NETWORK": "host",
            "TFSGATE_ADMIN_TOKEN": secrets.token_hex(16),
            "TRITON_REPOSITORY_KEY": secrets.token_hex(16),
            "TFSGATE_DB_PASSWORD": secrets.token_hex(16),
            "PROMETHEUS_PORT": str(free_port()),
            "TFSGATE_GRPC_PORT": str(free_port()),
            "TFSGATE_REST_PORT": str(free_port()),
            "TFSGATE_ADMIN_PORT": str(free_port()),
            **docker.pip_build_args(),
        },
    )
    project.run("down", "-v", "--remove-orphans", check=False)  # what a killed run left
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
