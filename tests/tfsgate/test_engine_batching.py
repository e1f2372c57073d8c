"""TF Serving's batching, our response cache and the runners' threads through ``tfsgate serve``
(real Triton): concurrent requests merge into fewer runner calls, TF Serving's refusal of a task
larger than max_batch_size, cache hits counted, thread flags reaching the runners."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin_http import admin, admin_call, serve_with_admin
from tests.support.models import write_model
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.triton  # starts tritonserver

BATCHING = """
max_batch_size { value: 32 }
batch_timeout_micros { value: 20000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 1 }
"""


@pytest.fixture(scope="module")
def batching_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("batching")
    write_model("write_half_plus_two", root / "hpt" / "1")
    write_model("write_half_plus_two", root / "cached" / "1")
    write_model("write_half_plus_two", root / "tfhpt" / "1")
    write_model("write_unbatched", root / "unbatched" / "1")
    config = (
        "model_config_list {\n"
        + "\n".join(
            f'  config {{ name: "{n}" base_path: "{root / n}" model_platform: "tensorflow" }}'
            for n in ("hpt", "cached", "unbatched", "tfhpt")
        )
        + "\n}\n"
    )
    (root / "batching.txt").write_text(BATCHING)
    settings = root / "settings.json"
    settings.write_text(
        json.dumps(
            {"models": {"cached": {"response_cache": True}, "tfhpt": {"runner": "tensorflow"}}}
        )
    )
    flags = [
        "--enable_batching",
        f"--batching_parameters_file={root / 'batching.txt'}",
        f"--model_settings_file={settings}",
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=2",
        "--onnx_intra_op_threads=2",
    ]
    with serve_with_admin(root, config, "hpt", flags) as served:
        yield served


def stats(api: str, model: str) -> dict[str, dict[str, int]]:
    response = admin_call("GET", f"{api}/models/{model}/stats")
    assert response.status_code == 200, response.text
    (version,) = response.json()["versions"]
    return dict(version["signatures"])


def predict(server: ServerProcess, model: str, values: list[float]) -> httpx.Response:
    return httpx.post(
        f"{server.rest_url}/v1/models/{model}:predict", json={"instances": values}, timeout=60
    )


def test_concurrent_requests_merge_into_fewer_executions(
    batching_server: tuple[ServerProcess, str],
) -> None:
    server, api = batching_server
    before = stats(api, "hpt").get("serving_default", {"inference_count": 0, "execution_count": 0})
    errors: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(timeout=60) as http:
            for i in range(20):
                value = float(index * 100 + i)
                answer = http.post(
                    f"{server.rest_url}/v1/models/hpt:predict", json={"instances": [value]}
                )
                if answer.json() != {"predictions": [0.5 * value + 2.0]}:
                    errors.append(answer.text)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    after = stats(api, "hpt")["serving_default"]
    requests = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    print(f"\n[batching] 16 clients x 20 requests: {requests} rows in {executions} executions")
    assert requests == 320
    assert executions < requests


def test_task_larger_than_max_batch_size_is_refused_as_tf_serving_does(
    batching_server: tuple[ServerProcess, str],
) -> None:
    server, _ = batching_server
    response = predict(server, "hpt", [1.0] * 33)
    assert response.status_code == 400
    assert "Task size 33 is larger than maximum input batch size 32" in response.json()["error"]
    assert predict(server, "hpt", [1.0] * 32).status_code == 200
    # The TensorFlow runner says the same (unbatched/serving_default takes float[3], unbatched).
    body = {"signature_name": "scalar", "inputs": {"s": 1.0}}
    assert (
        httpx.post(
            f"{server.rest_url}/v1/models/unbatched:predict", json=body, timeout=60
        ).status_code
        == 200
    )


def test_response_cache_hits_are_counted(batching_server: tuple[ServerProcess, str]) -> None:
    server, api = batching_server
    models = admin("GET", f"{api}/models/cached").json()
    assert models["response_cache"] is True
    # The same request again and again: after the first (a miss) answers come from the cache.
    # Triton inserts an answer after sending it, so a request right behind may still miss.
    for _ in range(10):
        assert predict(server, "cached", [7.0]).json() == {"predictions": [5.5]}
        counters = stats(api, "cached")["serving_default"]
        if counters["cache_hits"] >= 2:
            break
    assert counters["cache_hits"] >= 2
    assert counters["cache_misses"] >= 1
    assert stats(api, "hpt")["serving_default"]["cache_hits"] == 0


def test_thread_flags_reach_the_runners(batching_server: tuple[ServerProcess, str]) -> None:
    server, _ = batching_server
    config = (server.home / "model_repository" / "unbatched__scalar" / "config.pbtxt").read_text()
    assert 'key: "tf_intra_op_threads"\n  value {\n    string_value: "1"' in config
    assert 'key: "tf_inter_op_threads"\n  value {\n    string_value: "2"' in config
    body = {"signature_name": "scalar", "inputs": {"s": 1.0}}
    answer = httpx.post(f"{server.rest_url}/v1/models/unbatched:predict", json=body, timeout=60)
    assert answer.json()["outputs"]["label"] == "1.0"
    workers = [
        p.read_bytes().split(b"\0")
        for p in Path("/proc").glob("[0-9]*/cmdline")
        if b"tf_worker.py" in p.read_bytes() and str(server.home).encode() in p.read_bytes()
    ]
    assert workers, "no TensorFlow worker for the TensorFlow-served signature"
    argv = workers[0]
    assert argv[argv.index(b"--intra_op_threads") + 1] == b"1"
    assert argv[argv.index(b"--inter_op_threads") + 1] == b"2"
    onnx = (server.home / "model_repository" / "hpt" / "config.pbtxt").read_text()
    assert 'key: "intra_op_threads"\n  value {\n    string_value: "2"' in onnx
