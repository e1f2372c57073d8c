"""Request logging as TF Serving does it: sampled ``PredictionLog`` records in TFRecord files.

A model's ``logging_config`` (models.config) sets ``sampling_config.sampling_rate`` and
``log_collector_config.filename_prefix``. A sampled request costs the request path one
``random()`` and one ``put_nowait`` of the objects it already has; a writer thread builds the
protos (request, response, ``log_metadata`` with the effective model spec), frames them as
TFRecords and writes them to ``<prefix>-<UTC time>-<pid>-<n>.tfrecord``, starting a new file past
``max_file_bytes`` or ``max_file_seconds`` and deleting the oldest beyond ``max_files``. The queue
is bounded: when it is full a record is dropped and counted, never waited for.

TF Serving's ``LogMetadata`` has no request-id field (apis/logging.proto), so the request id goes
in ``log_metadata.request_origin``.

The same thread hands a compact form of each logged (and each shadowed) prediction to a
``PredictionSink``: feedback joins ground truth to these by request id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
from prometheus_client import Counter

from gateway import grpc_convert as convert
from gateway.codecs.tensor_proto import ndarray_to_tensor_proto
from gateway.tfrecord import frame
from gateway.types import ClassifyResult, PredictResult, RegressResult, ServedSpec, Tensors
from tfsgate.core import protos
from tfsgate.core.routing_table import LoggingRoute
from tfsgate.core.signatures import CLASSIFY_METHOD, REGRESS_METHOD

log = logging.getLogger(__name__)

LOGGED = Counter("tfsgate_request_logs_written", "PredictionLog records written", ["model"])
DROPPED = Counter(
    "tfsgate_request_logs_dropped", "Records dropped because the log queue was full", ["model"]
)
# Output names read as "the prediction" of a predict signature with several outputs, in order.
PREDICTION_OUTPUTS = (
    "probabilities",
    "probability",
    "scores",
    "predictions",
    "logistic",
    "outputs",
)


LoggingPolicy = LoggingRoute  # a model's logging_config, as the routing table carries it


@dataclass(frozen=True)
class PredictionRecord:
    """One version's answer to one request, reduced to what quality metrics need.

    ``rows`` holds one entry per request row: a number or a list of scores; ``classes`` the
    class labels of those scores when the signature names them (classify).
    """

    model: str
    version: int
    request_id: str
    rows: list[Any]
    classes: list[str] | None = None
    output: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rows": self.rows, "output": self.output}
        if self.classes is not None:
            data["classes"] = self.classes
        return data


class PredictionSink(Protocol):
    """Where recorded predictions go (the catalog, in ``tfsgate serve``). Called off the loop."""

    def record_predictions(self, records: Sequence[PredictionRecord]) -> object: ...


@dataclass(frozen=True)
class LogEntry:
    # predict, classify, regress, multi_inference, record (a prediction to record, not logged)
    kind: str
    spec: ServedSpec
    request_id: str
    policy: LoggingPolicy | None
    inputs: Any  # Tensors for predict, serialized tf.Examples for the others
    # PredictResult, ClassifyResult, RegressResult, a list of the last two (multi_inference, in
    # task order), or a PredictionRecord
    result: Any
    output_filter: tuple[str, ...] = ()
    time: float = 0.0


def prediction_record(spec: ServedSpec, request_id: str, result: Any) -> PredictionRecord | None:
    """The compact prediction of a result, or None when it has no numeric output."""
    if isinstance(result, ClassifyResult):
        classes = [label for label, _ in result.classes[0]] if result.classes else []
        rows = [[score for _, score in row] for row in result.classes]
        return PredictionRecord(spec.name, spec.version, request_id, rows, classes, "scores")
    if isinstance(result, RegressResult):
        return PredictionRecord(spec.name, spec.version, request_id, list(result.values), None)
    if isinstance(result, PredictResult):
        return predict_record(spec, request_id, result.outputs)
    return None


def predict_record(spec: ServedSpec, request_id: str, outputs: Tensors) -> PredictionRecord | None:
    numeric = {k: v for k, v in outputs.items() if v.dtype.kind in "biuf"}
    if not numeric:
        return None
    name = next((n for n in PREDICTION_OUTPUTS if n in numeric), None) or sorted(numeric)[0]
    array = numeric[name]
    if array.ndim == 0:
        rows: list[Any] = [float(array)]
    else:
        flat = array.reshape(array.shape[0], -1).astype(np.float64)
        rows = [row[0] if len(row) == 1 else row for row in flat.tolist()]
    return PredictionRecord(spec.name, spec.version, request_id, rows, None, name)


class _ModelFile:
    def __init__(self, stream: BinaryIO, path: Path, opened: float) -> None:
        self.stream, self.path, self.opened, self.size = stream, path, opened, 0


class PredictionLogger:
    """The bounded queue and its writer thread. ``submit`` never blocks."""

    def __init__(
        self,
        directory: Path,
        sink: PredictionSink | None = None,
        *,
        queue_size: int = 10_000,
        max_file_bytes: int = 64 << 20,
        max_file_seconds: float = 3600.0,
        max_files: int = 100,
        flush_seconds: float = 0.2,
    ) -> None:
        self.directory = directory
        self.sink = sink
        self.max_file_bytes = max_file_bytes
        self.max_file_seconds = max_file_seconds
        self.max_files = max_files
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue[LogEntry | None] = queue.Queue(queue_size)
        self._files: dict[str, _ModelFile] = {}
        self._pending: list[PredictionRecord] = []
        self._sequence = 0
        self._flushed_at = 0.0
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    # -- request path ------------------------------------------------------------------------
    def submit(self, entry: LogEntry) -> bool:
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            DROPPED.labels(entry.spec.name).inc()
            return False
        self._idle.clear()
        return True

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until everything submitted so far is written and recorded (feedback, tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._idle.wait(0.01) and self._queue.empty() and self._idle.is_set():
                return True
        return False

    # -- writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                entry = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                self._flush()
                continue
            if entry is None:
                self._flush()
                self._close_all()
                return
            try:
                self._handle(entry)
            except Exception:  # noqa: BLE001 - a bad record must not stop logging
                log.exception("could not log a %s record for %s", entry.kind, entry.spec.name)
            # Records go to the sink in batches, one transaction per ``flush_seconds`` at most:
            # a transaction per record would take the GIL from the requests being served.
            if time.monotonic() - self._flushed_at >= self.flush_seconds:
                self._flush()

    def _handle(self, entry: LogEntry) -> None:
        if entry.kind == "record":
            self._pending.append(entry.result)
            return
        if entry.policy is not None:
            self._write(entry.spec.name, entry.policy, build_prediction_log(entry))
            LOGGED.labels(entry.spec.name).inc()
        if self.sink is not None:
            # MultiInference: the first task's answer is the request's prediction.
            result = entry.result[0] if isinstance(entry.result, list) else entry.result
            record = prediction_record(entry.spec, entry.request_id, result)
            if record is not None:
                self._pending.append(record)

    def _flush(self) -> None:
        self._flushed_at = time.monotonic()
        for model_file in self._files.values():
            model_file.stream.flush()
        if self._pending and self.sink is not None:
            pending, self._pending = self._pending, []
            try:
                self.sink.record_predictions(pending)
            except Exception:  # noqa: BLE001 - the catalog may be down; records are dropped
                log.exception("could not record %d predictions", len(pending))
        if self._queue.empty():
            self._idle.set()

    def _write(self, model: str, policy: LoggingPolicy, data: bytes) -> None:
        now = time.time()
        current = self._files.get(model)
        if current is not None and (
            current.size >= self.max_file_bytes or now - current.opened >= self.max_file_seconds
        ):
            current.stream.close()
            current = None
        if current is None:
            current = self._files[model] = self._open(model, policy, now)
        record = frame(data)
        current.stream.write(record)
        current.size += len(record)

    def log_prefix(self, model: str, policy: LoggingPolicy) -> Path:
        """``filename_prefix`` as given when absolute, else under the log directory."""
        given = policy.filename_prefix or model
        path = Path(given)
        return path if path.is_absolute() else self.directory / model / given

    def _open(self, model: str, policy: LoggingPolicy, now: float) -> _ModelFile:
        prefix = self.log_prefix(model, policy)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        path = prefix.parent / f"{prefix.name}-{stamp}-{os.getpid()}-{self._sequence}.tfrecord"
        self._prune(prefix)
        return _ModelFile(open(path, "ab"), path, now)  # noqa: SIM115 - kept open across records

    def _prune(self, prefix: Path) -> None:
        files = sorted(
            prefix.parent.glob(f"{prefix.name}-*.tfrecord"), key=lambda p: p.stat().st_mtime
        )
        for old in files[: max(len(files) - self.max_files + 1, 0)]:
            with contextlib.suppress(OSError):
                old.unlink()

    def _close_all(self) -> None:
        for model_file in self._files.values():
            with contextlib.suppress(OSError):
                model_file.stream.close()
        self._files.clear()


def _model_spec(target: Any, spec: ServedSpec) -> None:
    target.name = spec.name
    target.version.value = spec.version
    target.signature_name = spec.signature


def build_prediction_log(entry: LogEntry) -> bytes:
    """The serialized ``PredictionLog`` of one request (runs in the writer thread)."""
    record = protos.prediction_log_pb2.PredictionLog()
    metadata = record.log_metadata
    _model_spec(metadata.model_spec, entry.spec)
    assert entry.policy is not None
    metadata.sampling_config.sampling_rate = entry.policy.sampling_rate
    metadata.saved_model_tags.append("serve")
    metadata.timestamp_secs = int(entry.time or time.time())
    metadata.request_origin = entry.request_id
    if entry.kind == "predict":
        request = record.predict_log.request
        _model_spec(request.model_spec, entry.spec)
        for key, array in entry.inputs.items():
            ndarray_to_tensor_proto(array, into=request.inputs[key])
        request.output_filter.extend(entry.output_filter)
        result: PredictResult = entry.result
        record.predict_log.response.CopyFrom(
            convert.predict_response(result, result.signature.outputs, False)
        )
    elif entry.kind == "classify":
        _examples(record.classify_log.request, entry)
        record.classify_log.response.CopyFrom(convert.classification_response(entry.result))
    elif entry.kind == "regress":
        _examples(record.regress_log.request, entry)
        record.regress_log.response.CopyFrom(convert.regression_response(entry.result))
    elif entry.kind == "multi_inference":
        _multi_inference(record.multi_inference_log, entry)
    return bytes(record.SerializeToString())


def _multi_inference(log_entry: Any, entry: LogEntry) -> None:
    """TF Serving's ``MultiInferenceLog``: one task per result, the examples once."""
    request, response = log_entry.request, log_entry.response
    for result in entry.result:
        task = request.tasks.add()
        _model_spec(task.model_spec, result.spec)
        answer = response.results.add()
        _model_spec(answer.model_spec, result.spec)
        if isinstance(result, ClassifyResult):
            task.method_name = CLASSIFY_METHOD
            answer.classification_result.CopyFrom(convert.classification_result(result))
        else:
            task.method_name = REGRESS_METHOD
            answer.regression_result.CopyFrom(convert.regression_result(result))
    _example_list(request.input, entry.inputs)


def _examples(request: Any, entry: LogEntry) -> None:
    _model_spec(request.model_spec, entry.spec)
    _example_list(request.input, entry.inputs)


def _example_list(model_input: Any, inputs: Any) -> None:
    examples = model_input.example_list.examples
    for serialized in np.asarray(inputs).ravel().tolist():
        examples.add().ParseFromString(serialized)
