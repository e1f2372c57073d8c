"""docker-compose.yml (GPU host) and docker-compose.cpu.yml, as compose itself resolves them.

``compose config`` parses, validates and interpolates the files without an engine, so this runs
wherever compose is installed. The topology running for real is the container e2e test's job.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.docker import REPO, compose_command

SECRETS = {"TFSGATE_ADMIN_TOKEN": "test-admin-token", "TRITON_REPOSITORY_KEY": "test-key"}
GPU = ["-f", "docker-compose.yml"]
CPU = ["-f", "docker-compose.yml", "-f", "docker-compose.cpu.yml"]


def resolve(files: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [*command, *files, "config"],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@functools.cache
def _config_text(files: tuple[str, ...]) -> str:
    """One ``config`` run per file set (each takes about a second); parsed afresh per test."""
    result = resolve(list(files), SECRETS)
    assert result.returncode == 0, result.stderr
    return result.stdout


def config(files: list[str]) -> dict[str, Any]:
    return yaml.safe_load(_config_text(tuple(files)))


def size_in_bytes(size: str | int) -> int:
    """Compose sizes: bytes, or a number with b/k/m/g (v1 keeps "2gb", v2 gives bytes)."""
    text = str(size).lower().rstrip("b")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1:] in units else int(text)


def flags(service: dict[str, Any]) -> list[str]:
    return [*(service.get("entrypoint") or []), *(service.get("command") or [])]


def test_secrets_are_required_not_defaulted() -> None:
    result = resolve(GPU, {})
    assert result.returncode != 0
    assert "TRITON_REPOSITORY_KEY" in result.stderr or "TFSGATE_ADMIN_TOKEN" in result.stderr


def test_gpu_triton_is_reserved_a_gpu_explicit_and_key_restricted() -> None:
    triton = config(GPU)["services"]["triton"]
    (device,) = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "nvcr.io/nvidia/tritonserver:" in triton["build"]["args"]["TRITON_BASE"]
    assert triton["build"]["args"]["TRITON_BASE"].endswith("-py3")
    args = flags(triton)
    assert "--model-control-mode=explicit" in args
    key = f"model-repository:tfsgate-repository-key={SECRETS['TRITON_REPOSITORY_KEY']}"
    assert f"--grpc-restricted-protocol={key}" in args
    assert f"--http-restricted-api={key}" in args
    assert size_in_bytes(triton["shm_size"]) >= 1 << 30  # Docker's default is 64 MiB
    assert "profiles" not in triton  # it starts with a plain `docker compose up`


def test_control_plane_migrates_then_runs_against_postgres_and_triton() -> None:
    services = config(GPU)["services"]
    control = services["control-plane"]
    script = control["entrypoint"][2]
    assert script.index("tfsgate db upgrade") < script.index("tfsgate control-plane")
    args = control["command"]
    assert "--triton_url=triton:8001" in args
    assert "--model_config_file=/models/models.config" in args
    # The catalog's URL (with its password) in the environment, not on the command line.
    assert not [a for a in args if a.startswith("--database_url")]
    url = control["environment"]["TFSGATE_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg2://") and "@postgres:5432/" in url
    assert control["environment"]["TFSGATE_TRITON_FLAVOR"] == "gpu"
    assert control["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert control["environment"]["TFSGATE_ADMIN_TOKEN"] == SECRETS["TFSGATE_ADMIN_TOKEN"]
    # The admin API is published on the host's loopback only.
    assert all(str(p).startswith("127.0.0.1:") for p in control["ports"]) or all(
        p.get("host_ip") == "127.0.0.1" for p in control["ports"] if isinstance(p, dict)
    )


def test_two_gateway_replicas_serve_tf_serving_ports_and_metrics() -> None:
    services = config(GPU)["services"]
    published = []
    for name in ("gateway", "gateway-2"):
        gateway = services[name]
        assert flags(gateway)[:2] == ["tfsgate", "gateway"]
        assert "--triton_url=triton:8001" in gateway["command"]
        assert "--monitoring_config_file=/etc/tfsgate/monitoring.config" in gateway["command"]
        assert f"{REPO}/deploy/monitoring.config" in yaml.safe_dump(gateway["volumes"])
        published.append(yaml.safe_dump(gateway["ports"]))
        assert "TFSGATE_DATABASE_URL" in gateway["environment"]
    assert "8500" in published[0] and "8501" in published[0]
    assert "8510" in published[1] and "8511" in published[1]
    # Prometheus' DNS discovery of "gateway" finds both replicas.
    assert services["gateway-2"]["networks"]["default"]["aliases"] == ["gateway"]
    monitoring = (REPO / "deploy" / "monitoring.config").read_text()
    assert "enable: true" in monitoring and '"/monitoring/prometheus/metrics"' in monitoring


def test_prometheus_and_grafana_mount_the_checked_in_configs() -> None:
    services = config(GPU)["services"]
    # Prometheus finds each role by its compose service name (dns_sd_configs in prometheus.yml).
    assert {"gateway", "control-plane", "triton"} <= set(services)
    mounts = yaml.safe_dump([services["prometheus"]["volumes"], services["grafana"]["volumes"]])
    for relative in (
        "deploy/prometheus/prometheus.yml",
        "deploy/grafana/provisioning",
        "deploy/grafana/dashboards",
    ):
        assert str(REPO / relative) in mounts
        assert (REPO / relative).exists()


def test_cpu_variant_switches_triton_to_tfsgates_image() -> None:
    services = config(CPU)["services"]
    assert services["triton"]["profiles"] == ["gpu"]  # never activated: the GPU Triton stays off
    cpu = services["triton-cpu"]
    assert cpu["image"] == services["gateway"]["image"]
    assert cpu["entrypoint"] == ["tritonserver"]
    assert "deploy" not in cpu
    assert cpu["networks"]["default"]["aliases"] == ["triton"]
    assert "--model-control-mode=explicit" in cpu["command"]
    assert services["control-plane"]["environment"]["TFSGATE_TRITON_FLAVOR"] == "cpu"
    assert Path(REPO / "docker" / "tritonserver.sh").exists()
