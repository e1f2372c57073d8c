"""Shadow traffic and request logging over a real ``tfsgate serve``.

half_plus_three (version 2) shadows half_plus_two (version 1): callers only ever get version 1's
answers, and the difference (exactly 1.0 per row) shows in the admin summary, the CLI and
Prometheus. ``logging_config`` writes ``PredictionLog`` records that TensorFlow's TFRecord reader
reads back and that parse, with the request id in ``log_metadata``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin_http import admin, admin_cli, serve_with_admin
from tests.support.models import model_config, write_models
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.triton
LOGGING = (
    "logging_config { sampling_config { sampling_rate: 1.0 } "
    'log_collector_config { type: "tfrecord" filename_prefix: "hpt_log" } }'
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("shadow")
    base = root / "models" / "hpt"
    write_models(("half_plus_two", base / "1", {}), ("half_plus_three", base / "2", {}))
    with serve_with_admin(root, model_config(("hpt", base), extra=LOGGING), "hpt") as served:
        yield served


def test_shadow_never_changes_answers_and_shows_the_difference(
    served: tuple[ServerProcess, str],
) -> None:
    server, api = served
    assert "hpt: 1=100" in admin_cli(api, "traffic", "hpt", "1=100")
    assert "shadow version 2 at 100 %" in admin_cli(api, "shadow", "hpt", "2", "--percent", "100")
    url = f"{server.rest_url}/v1/models/hpt:predict"
    with httpx.Client(timeout=30) as client:
        for x in range(50):
            response = client.post(url, json={"instances": [[float(x)], [x + 0.5]]})
            assert response.status_code == 200, response.text
            assert response.json()["predictions"] == [[0.5 * x + 2], [0.5 * (x + 0.5) + 2]]
            assert response.headers["x-model-version"] == "1"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        comparisons = admin("GET", f"{api}/models/hpt/shadow").json()["comparisons"]
        if comparisons and comparisons[0]["requests"] >= 50:
            break
        time.sleep(0.2)
    (summary,) = comparisons
    assert (summary["primary_version"], summary["shadow_version"]) == (1, 2)
    assert summary["requests"] == 50 and summary["errors"] == 0
    assert summary["max_abs_diff"] == pytest.approx(1.0)
    assert summary["share_rows_beyond_tolerance"] == 1.0
    shown = admin_cli(api, "shadow", "hpt")
    assert "1->2" in shown and "50" in shown
    metrics = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics").text
    assert 'tfsgate_shadow_max_abs_diff{model="hpt",version="2"} 1.0' in metrics
    assert "no shadow" in admin_cli(api, "shadow", "hpt", "--off")


def test_prediction_logs_read_back_with_tensorflow(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    sent = {}
    with httpx.Client(timeout=30) as client:
        for x in range(5):
            request_id = f"log-{x}"
            response = client.post(
                f"{server.rest_url}/v1/models/hpt/versions/2:predict",
                json={"instances": [float(x)]},
                headers={"X-Request-Id": request_id},
            )
            assert response.status_code == 200
            sent[request_id] = float(x)
        regress = client.post(
            f"{server.rest_url}/v1/models/hpt/versions/1:regress",
            json={"signature_name": "regress_x_to_y", "examples": [{"x": 4.0}]},
            headers={"X-Request-Id": "log-regress"},
        )
        assert regress.status_code == 200
    records = _read_logs(server.home / "request_logs" / "hpt", set(sent) | {"log-regress"})
    predicts = {r.log_metadata.request_origin: r for r in records if r.HasField("predict_log")}
    for request_id, x in sent.items():
        record = predicts[request_id]
        assert record.log_metadata.model_spec.name == "hpt"
        assert record.log_metadata.model_spec.version.value == 2
        assert record.log_metadata.sampling_config.sampling_rate == 1.0
        assert list(record.predict_log.request.inputs["x"].float_val) == [x]
        assert list(record.predict_log.response.outputs["y"].float_val) == [0.5 * x + 3]
    (regressed,) = [r for r in records if r.log_metadata.request_origin == "log-regress"]
    assert regressed.regress_log.response.result.regressions[0].value == 4.0
    example = regressed.regress_log.request.input.example_list.examples[0]
    assert list(example.features.feature["x"].float_list.value) == [4.0]


def _read_logs(directory: Path, wanted: set[str]) -> list[object]:
    """Every record of the TFRecord files, once ``wanted`` request ids are all in."""
    tf = pytest.importorskip("tensorflow")
    from tensorflow_serving.apis import prediction_log_pb2

    deadline = time.monotonic() + 15
    while True:
        files = sorted(str(p) for p in directory.glob("hpt_log-*.tfrecord"))
        records = []
        for raw in tf.data.TFRecordDataset(files) if files else []:
            record = prediction_log_pb2.PredictionLog()
            record.ParseFromString(raw.numpy())
            records.append(record)
        if wanted <= {r.log_metadata.request_origin for r in records}:
            return records
        if time.monotonic() > deadline:
            pytest.fail(
                f"log records missing: {wanted - {r.log_metadata.request_origin for r in records}}"
            )
        time.sleep(0.3)


def test_multi_inference_is_shadowed_and_logged(served: tuple[ServerProcess, str]) -> None:
    """One MultiInference: one shadow copy running every task on the shadow version, and one
    ``multi_inference_log`` record with the tasks, the examples and both results."""
    import grpc

    from tfsgate.core import protos

    server, admin_api = served
    api = f"{admin_api}/models/hpt"
    admin("PUT", f"{api}/traffic", {"weights": {"1": 100}})
    before = {
        (c["primary_version"], c["shadow_version"]): c["requests"]
        for c in admin("GET", f"{api}/shadow").json()["comparisons"]
    }.get((1, 2), 0)
    admin("PUT", f"{api}/shadow", {"version": 2, "percent": 100})
    message = protos.inference_pb2.MultiInferenceRequest()
    for signature in ("regress_x_to_y", "regress_x_to_y2"):
        task = message.tasks.add()
        task.model_spec.name = "hpt"
        task.model_spec.signature_name = signature
        task.method_name = "tensorflow/serving/regress"
    example = message.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(4.0)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        answer = stub.MultiInference(message, timeout=30, metadata=[("x-request-id", "log-multi")])
    # The primary's answers only: version 1, y = 0.5x + 2 and y2 = 0.5x + 3.
    assert [r.regression_result.regressions[0].value for r in answer.results] == [4.0, 5.0]
    assert {r.model_spec.version.value for r in answer.results} == {1}
    deadline = time.monotonic() + 10
    while True:
        (summary,) = admin("GET", f"{api}/shadow").json()["comparisons"]
        if summary["requests"] == before + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    admin("DELETE", f"{api}/shadow")
    assert summary["requests"] == before + 1 and summary["errors"] == 0
    assert summary["max_abs_diff"] == pytest.approx(1.0)  # y differs by 1, y2 not at all
    (record,) = [
        r
        for r in _read_logs(server.home / "request_logs" / "hpt", {"log-multi"})
        if r.log_metadata.request_origin == "log-multi"
    ]
    assert record.HasField("multi_inference_log")
    logged = record.multi_inference_log
    assert [t.model_spec.signature_name for t in logged.request.tasks] == [
        "regress_x_to_y",
        "regress_x_to_y2",
    ]
    assert {t.method_name for t in logged.request.tasks} == {"tensorflow/serving/regress"}
    (logged_example,) = logged.request.input.example_list.examples
    assert list(logged_example.features.feature["x"].float_list.value) == [4.0]
    assert [r.regression_result.regressions[0].value for r in logged.response.results] == [4.0, 5.0]
    assert record.log_metadata.model_spec.version.value == 1
