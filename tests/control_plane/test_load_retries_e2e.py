"""TF Serving's load retries over a real ``tfsgate serve``: a version whose load fails stays
LOADING while it is retried (--max_num_load_retries times, --load_retry_interval_micros apart),
then ends with the last failure; the version already serving answers throughout."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess, start_server

pytestmark = pytest.mark.triton  # starts tritonserver


def _states(server: ServerProcess) -> dict[str, tuple[str, str]]:
    body = httpx.get(f"{server.rest_url}/v1/models/m", timeout=10).json()
    return {
        s["version"]: (s["state"], s["status"].get("error_message", ""))
        for s in body["model_version_status"]
    }


def test_failed_load_is_retried_then_fails(
    half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("retries")
    base = root / "m"
    shutil.copytree(half_plus_two / "00000123", base / "1")
    # Version 2 (arrives once 1 serves): a graph without its variables, TensorFlow fails to load.
    broken = root / "broken"
    shutil.copytree(half_plus_two / "00000123", broken)
    shutil.rmtree(broken / "variables")
    args = [
        "--model_name=m",
        f"--model_base_path={base}",
        "--model_config_file_poll_wait_seconds=0",
        "--max_num_load_retries=2",
        "--load_retry_interval_micros=1000000",
    ]
    with start_server(root / "home", [*args, "--file_system_poll_wait_seconds=1"]) as server:
        shutil.copytree(broken, root / "staging")
        (root / "staging").rename(base / "2")
        seen: list[tuple[str, str]] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            states = _states(server)
            seen.append(states.get("2", ("", "")))
            answer = httpx.post(
                f"{server.rest_url}/v1/models/m/versions/1:predict",
                json={"instances": [2.0]},
                timeout=30,
            )
            assert answer.json() == {"predictions": [3.0]}  # version 1 keeps serving
            if states.get("2", ("", ""))[0] == "END":
                break
            time.sleep(0.5)
        state, message = _states(server)["2"]
        log = server.log()
    assert state == "END"
    assert "failed 3 times, --max_num_load_retries=2" in message
    assert ("LOADING", "") in seen  # TF Serving shows LOADING while it retries
    assert "retry 1 of 2 in 1 s" in log and "retry 2 of 2 in 1 s" in log
