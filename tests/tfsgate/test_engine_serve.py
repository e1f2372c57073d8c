"""The engine through ``tfsgate serve`` (real Triton, SQLite, admin API): which runner serves each
signature and why, the runner setting, TF1 graphs, and no TensorFlow process where ONNX Runtime
serves everything."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin_http import admin_call, serve_with_admin
from tests.support.models import write_model
from tests.support.procs import tree
from tests.support.servers import ServerProcess
from tfsgate.core.naming import belongs_to

pytestmark = pytest.mark.triton  # starts tritonserver


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("engine")
    models = {
        "hpt": "write_half_plus_two",
        "unbatched": "write_unbatched",
        "legacy": "write_legacy_tf1",
    }
    for name, writer in models.items():
        write_model(writer, root / name / "1")
    for name, unknown in (("warm", False), ("badwarm", True)):
        write_model("write_half_plus_two", root / name / "1")
        code = (
            "import sys; from tfsgate.examples import write_warmup_requests\n"
            "write_warmup_requests(sys.argv[1], unknown_signature=sys.argv[2] == '1')\n"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(root / name / "1"), "1" if unknown else "0"],
            check=True,
            capture_output=True,
        )
    lines = [
        f'  config {{ name: "{name}" base_path: "{root / name}" model_platform: "tensorflow" }}'
        for name in (*models, "warm", "badwarm")
    ]
    config = "model_config_list {\n" + "\n".join(lines) + "\n}\n"
    with serve_with_admin(root, config, "hpt") as served:
        yield served


def signatures(api: str, model: str) -> dict[str, dict[str, object]]:
    response = admin_call("GET", f"{api}/models/{model}")
    assert response.status_code == 200, response.text
    (version,) = response.json()["versions"]
    return {s["name"]: s for s in version["signatures"]}


def post(server: ServerProcess, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.rest_url}/v1/models/{path}", json=body, timeout=60)


def test_half_plus_two_is_served_by_onnxruntime_with_its_parity(
    engine_server: tuple[ServerProcess, str],
) -> None:
    server, api = engine_server
    found = signatures(api, "hpt")
    assert set(found) == {
        "serving_default",
        "classify_x_to_y",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    }
    for signature in found.values():
        assert signature["runner"] == "onnxruntime", signature
        assert signature["max_abs_error"] == 0.0
        assert signature["parity_cases"] == 9
        assert signature["fallback_reason"] == ""
    assert post(server, "hpt:predict", {"instances": [1.0, 2.0]}).json() == {
        "predictions": [2.5, 3.0]
    }
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}, {"x": 3.0}]}
    assert post(server, "hpt:classify", body).json() == {"results": [[["", 2.5]], [["", 3.5]]]}
    body = {"signature_name": "regress_x_to_y2", "examples": [{"x": 1.0}]}
    assert post(server, "hpt:regress", body).json() == {"results": [3.5]}
    missing = post(server, "hpt:regress", {"signature_name": "regress_x_to_y", "examples": [{}]})
    assert missing.status_code == 400
    assert missing.json()["error"].startswith(
        "Name: <unknown>, Feature: x (data type: float) is required but could not be found."
    )


def test_mismatching_conversion_is_served_by_tensorflow_with_the_reason(
    engine_server: tuple[ServerProcess, str],
) -> None:
    """tf2onnx turns AsString(precision=1) into a Cast: the parity check sees "2" vs "2.0"."""
    server, api = engine_server
    found = signatures(api, "unbatched")
    assert found["serving_default"]["runner"] == "onnxruntime"
    scalar = found["scalar"]
    assert scalar["runner"] == "tensorflow"
    assert str(scalar["fallback_reason"]).startswith("parity check failed: zeros: output 'label'")
    answer = post(server, "unbatched:predict", {"signature_name": "scalar", "inputs": {"s": 2.0}})
    assert answer.json()["outputs"]["label"] == "2.0"


def test_forcing_onnxruntime_is_refused_with_the_figures(
    engine_server: tuple[ServerProcess, str],
) -> None:
    _, api = engine_server
    response = admin_call("PATCH", f"{api}/models/unbatched", {"runner": "onnxruntime"})
    assert response.status_code == 400 or response.status_code == 409, response.text
    assert "version 1 signature 'scalar': parity check failed" in response.json()["error"]
    assert admin_call("GET", f"{api}/models/unbatched").json()["runner"] == "auto"


def test_runner_setting_converts_again(engine_server: tuple[ServerProcess, str]) -> None:
    server, api = engine_server
    response = admin_call("PATCH", f"{api}/models/hpt", {"runner": "tensorflow"})
    assert response.status_code == 200, response.text
    assert response.json()["runner"] == "tensorflow"
    assert {s["runner"] for s in signatures(api, "hpt").values()} == {"tensorflow"}
    assert post(server, "hpt:predict", {"instances": [4.0]}).json() == {"predictions": [4.0]}
    # Each signature in a Triton model of its own now; the shared ones were unloaded.
    hpt = {n for n in ready_triton_models(server) if belongs_to("hpt", n)}
    assert len(hpt) == 5 and not {"hpt", "hpt__.unbatched"} & hpt, hpt
    assert admin_call("PATCH", f"{api}/models/hpt", {"runner": "auto"}).status_code == 200
    assert {s["runner"] for s in signatures(api, "hpt").values()} == {"onnxruntime"}
    assert post(server, "hpt:predict", {"instances": [6.0]}).json() == {"predictions": [5.0]}
    hpt = {n for n in ready_triton_models(server) if belongs_to("hpt", n)}
    assert hpt == {"hpt", "hpt__.unbatched"}, hpt  # the models of their own unloaded in turn


def ready_triton_models(server: ServerProcess) -> set[str]:
    triton = json.loads((server.home / "triton" / "endpoints.json").read_text())["http_url"]
    index = httpx.post(f"{triton}/v2/repository/index", json={"ready": True}, timeout=10).json()
    return {m["name"] for m in index}


def test_tf1_graph_with_legacy_habits(engine_server: tuple[ServerProcess, str]) -> None:
    """A scalar examples placeholder fed a vector, examples declared DT_FLOAT, an asset table."""
    server, api = engine_server
    found = signatures(api, "legacy")
    assert found["tensorflow/serving/regress"]["runner"] == "onnxruntime"
    assert found["regress_level"]["runner"] == "tensorflow"
    body = {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 4.0}]}
    assert post(server, "legacy:regress", body).json() == {"results": [3.5, 5.0]}
    body = {
        "signature_name": "regress_level",
        "examples": [{"x": 1.0, "level": "high"}, {"x": 1.0}],
    }
    assert post(server, "legacy:regress", body).json() == {"results": [5.5, 4.5]}


def test_half_plus_two_alone_runs_without_tensorflow(server: ServerProcess) -> None:
    """The example ``make serve`` serves: two ONNX Runtime stubs, no TensorFlow process."""
    response = httpx.post(
        f"{server.rest_url}/v1/models/half_plus_two:predict", json={"instances": [1.0]}, timeout=30
    )
    assert response.json() == {"predictions": [2.5]}
    # The export child leaves once idle (15 s after the last conversion).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = tree(server.process.pid)
        commands = [cmdline(p) for p in pids]
        if not [c for c in commands if "converter.export" in c]:
            break
        time.sleep(0.5)
    assert not [c for c in commands if "tf_worker.py" in c or "converter.export" in c], commands
    # The tree's RSS is a benchmark figure (bench/engine.py), not an assertion: this session
    # server has served other tests by now.
    total = sum(rss_mib(p) for p in pids)
    print(f"\n[memory] half_plus_two tree: {len(pids)} processes, RSS {total:.0f} MiB")


def test_warmup_is_replayed_before_available(engine_server: tuple[ServerProcess, str]) -> None:
    server, api = engine_server
    (version,) = admin_call("GET", f"{api}/models/warm").json()["versions"]
    assert version["state"] == "AVAILABLE"
    assert version["warmup"]["records"] == 4  # predict, classify, regress, multi_inference
    assert version["warmup"]["seconds"] > 0
    events = admin_call("GET", f"{api}/events?model=warm").json()["events"]
    actions = [(e["action"], (e.get("after") or {}).get("state")) for e in events]
    warmed = actions.index(("set_model_version_warmup", "LOADING"))
    available = actions.index(("set_model_version_state", "AVAILABLE"))
    assert warmed < available, actions
    assert post(server, "warm:predict", {"instances": [2.0]}).json() == {"predictions": [3.0]}


def test_failing_warmup_fails_the_version(engine_server: tuple[ServerProcess, str]) -> None:
    _, api = engine_server
    (version,) = admin_call("GET", f"{api}/models/badwarm").json()["versions"]
    assert version["state"] == "FAILED"
    assert "no_such_signature" in version["state_reason"]
