"""The admin API over a real ``tfsgate serve`` (real Triton, SQLite): promote, rollback and a
canary split change which version answers, and leave audit events."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin_http import ADMIN_TOKEN, admin_call, serve_with_admin
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.triton  # starts tritonserver

WRITE = (
    "import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n"
    "from tfsgate.examples import write_half_plus_two\n"
    "write_half_plus_two(sys.argv[1], b=float(sys.argv[2]))\n"
)


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("admin-e2e")
    base = root / "models" / "hpt"
    for version, b in ((1, 2.0), (2, 3.0)):  # version 1 answers 0.5x + 2, version 2 0.5x + 3
        subprocess.run([sys.executable, "-c", WRITE, str(base / str(version)), str(b)], check=True)
    config = (
        f'model_config_list {{ config {{ name: "hpt" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { all {} } } }\n'
    )
    with serve_with_admin(root, config, "hpt") as served:
        yield served


def answer(server: ServerProcess, path: str = "hpt") -> float:
    response = httpx.post(
        f"{server.rest_url}/v1/models/{path}:predict", json={"instances": [2.0]}, timeout=30
    )
    assert response.status_code == 200, response.text
    return float(response.json()["predictions"][0])


def test_promote_then_rollback_answer_from_the_right_versions(
    admin_server: tuple[ServerProcess, str],
) -> None:
    server, api = admin_server
    assert answer(server) == 4.0  # latest (2) by default
    assert admin_call("POST", f"{api}/models/hpt/promote", {"version": 1}).status_code == 200
    assert answer(server, "hpt/labels/stable") == 3.0
    assert admin_call("POST", f"{api}/models/hpt/promote", {"version": 2}).status_code == 200
    assert answer(server, "hpt/labels/stable") == 4.0
    assert admin_call("POST", f"{api}/models/hpt/rollback").status_code == 200
    assert answer(server, "hpt/labels/stable") == 3.0
    events = httpx.get(f"{api}/events", params={"model": "hpt"}, timeout=10).json()["events"]
    actions = [e["action"] for e in events if e["action"] in ("promote", "rollback")]
    assert actions == ["promote", "promote", "rollback"]


def test_canary_split_moves_unversioned_traffic(admin_server: tuple[ServerProcess, str]) -> None:
    server, api = admin_server
    response = admin_call("PUT", f"{api}/models/hpt/traffic", {"weights": {"1": 100, "2": 0}})
    assert response.status_code == 200, response.text
    assert {answer(server) for _ in range(10)} == {3.0}
    assert admin_call("PUT", f"{api}/models/hpt/traffic", {"weights": {}}).status_code == 200
    assert answer(server) == 4.0


def test_mutation_without_token_changes_nothing(admin_server: tuple[ServerProcess, str]) -> None:
    server, api = admin_server
    before = httpx.get(f"{api}/events", params={"model": "hpt"}, timeout=10).json()["events"]
    response = httpx.post(f"{api}/models/hpt/promote", json={"version": 2}, timeout=10)
    assert response.status_code == 401
    after = httpx.get(f"{api}/events", params={"model": "hpt"}, timeout=10).json()["events"]
    assert after == before
    assert answer(server, "hpt/labels/stable") == 3.0


def test_cli_verbs_against_the_live_server(admin_server: tuple[ServerProcess, str]) -> None:
    _, api = admin_server
    admin_url = api.removesuffix("/v1/admin")
    env = {"TFSGATE_ADMIN_TOKEN": ADMIN_TOKEN, "PATH": str(Path(sys.executable).parent)}
    run = [sys.executable, "-m", "tfsgate.cli"]
    listed = subprocess.run(
        [*run, "versions", "hpt", f"--admin_url={admin_url}"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert listed.returncode == 0, listed.stderr
    assert "AVAILABLE" in listed.stdout
    promoted = subprocess.run(
        [*run, "promote", "hpt", "2", f"--admin_url={admin_url}"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert promoted.returncode == 0, promoted.stderr
