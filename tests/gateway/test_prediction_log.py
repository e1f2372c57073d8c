"""The prediction logger: records framed, rotated and pruned; a full queue drops and counts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from gateway.prediction_log import (
    DROPPED,
    LogEntry,
    PredictionLogger,
    PredictionRecord,
    build_prediction_log,
    predict_record,
)
from gateway.tfrecord import read_records
from gateway.types import ClassifyResult, PredictResult, RegressResult, ServedSpec
from tfsgate.core import protos
from tfsgate.core.routing_table import LoggingRoute
from tfsgate.core.signatures import SignatureSpec, TensorSpec

SPEC = ServedSpec("m", 3, "serving_default")
SIGNATURE = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    {"x": TensorSpec("x", "x:0", "DT_FLOAT", (-1, 1))},
    {"y": TensorSpec("y", "y:0", "DT_FLOAT", (-1, 1))},
)
POLICY = LoggingRoute(0.5, "prefix")


def entry(request_id: str, x: float = 1.0) -> LogEntry:
    inputs = {"x": np.array([[x]], dtype=np.float32)}
    result = PredictResult(SPEC, {"y": np.array([[x / 2]], dtype=np.float32)}, SIGNATURE)
    return LogEntry("predict", SPEC, request_id, POLICY, inputs, result, (), 1.0)


class Sink:
    def __init__(self) -> None:
        self.records: list[PredictionRecord] = []

    def record_predictions(self, records: Any) -> None:
        self.records.extend(records)


def read_all(directory: Path) -> list[Any]:
    records = []
    for path in sorted(directory.glob("prefix-*.tfrecord"), key=lambda p: p.stat().st_mtime):
        for raw in read_records(io.BytesIO(path.read_bytes())):
            record = protos.prediction_log_pb2.PredictionLog()
            record.ParseFromString(raw)
            records.append(record)
    return records


def test_records_are_written_rotated_and_recorded(tmp_path: Path) -> None:
    sink = Sink()
    logger = PredictionLogger(tmp_path, sink, max_file_bytes=200, max_files=3)
    logger.start()
    for i in range(10):
        assert logger.submit(entry(f"r{i}", float(i)))
    assert logger.wait_idle()
    logger.stop()
    files = list((tmp_path / "m").glob("prefix-*.tfrecord"))
    assert len(files) == 3  # rotated past 200 bytes, oldest pruned beyond 3
    kept = read_all(tmp_path / "m")
    assert [r.log_metadata.request_origin for r in kept] == [
        f"r{i}" for i in range(10 - len(kept), 10)
    ]
    last = kept[-1]
    assert last.log_metadata.model_spec.version.value == 3
    assert last.log_metadata.sampling_config.sampling_rate == 0.5
    assert list(last.predict_log.request.inputs["x"].float_val) == [9.0]
    assert list(last.predict_log.response.outputs["y"].float_val) == [4.5]
    assert [r.request_id for r in sink.records] == [f"r{i}" for i in range(10)]
    assert sink.records[-1].rows == [4.5]


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path, queue_size=2)  # not started: nothing drains
    before = DROPPED.labels("m")._value.get()
    results = [logger.submit(entry(f"r{i}")) for i in range(5)]
    assert results == [True, True, False, False, False]
    assert DROPPED.labels("m")._value.get() - before == 3


def test_predict_record_picks_the_prediction_output() -> None:
    outputs = {
        "classes": np.array([[b"a", b"b"]]),
        "probabilities": np.array([[0.2, 0.8]], dtype=np.float32),
        "logits": np.array([[1.0, 2.0]]),
    }
    record = predict_record(SPEC, "id", outputs)
    assert record is not None and record.output == "probabilities"
    assert record.rows == [[0.20000000298023224, 0.800000011920929]]


def test_multi_inference_is_logged_as_tf_serving_does() -> None:
    example = protos.example_pb2.Example()
    example.features.feature["x"].float_list.value.append(2.0)
    results = [
        ClassifyResult(ServedSpec("m", 3, "classify_x_to_y"), [[("", 3.0)]]),
        RegressResult(ServedSpec("m", 3, "regress_x_to_y"), [3.0]),
    ]
    batch = np.array([example.SerializeToString()], dtype=object)
    logged = build_prediction_log(
        LogEntry("multi_inference", results[0].spec, "r-multi", POLICY, batch, results, (), 5.0)
    )
    record = protos.prediction_log_pb2.PredictionLog.FromString(logged)
    assert record.log_metadata.request_origin == "r-multi"
    request, response = record.multi_inference_log.request, record.multi_inference_log.response
    assert [(t.model_spec.signature_name, t.method_name) for t in request.tasks] == [
        ("classify_x_to_y", "tensorflow/serving/classify"),
        ("regress_x_to_y", "tensorflow/serving/regress"),
    ]
    assert request.input.example_list.examples[0] == example
    classified, regressed = response.results
    assert classified.classification_result.classifications[0].classes[0].score == 3.0
    assert regressed.regression_result.regressions[0].value == 3.0
    assert regressed.model_spec.version.value == 3
