"""TF Serving's SavedModel warm-up: ``assets.extra/tf_serving_warmup_requests`` replayed through the
served model before the version is AVAILABLE (tensorflow_serving/g3doc/saved_model_warmup.md).

The file is a TFRecord of ``PredictionLog`` records (predict, classify, regress, multi_inference;
at most 1000). The export child, which has TensorFlow, turns each record into the Triton inputs of
the signature it names (``translate``): predict tensors with ``tf.make_ndarray``, classify and regress
inputs as serialized examples (a context is merged into every example, as TF Serving's
``InputToSerializedExampleTensor`` does), one request per task of a multi_inference. They are written
as a manifest plus raw tensor files (numbers little-endian, strings as Triton's 4-byte
length-prefixed elements: nothing is pickled) and read back here without TensorFlow (``load``) by
the reconciler, which replays them through Triton and records count and time on the version.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfsgate.core.example_input import serialized_examples

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MANIFEST = "warmup.json"
MAX_RECORDS = 1000  # WarmupConsts::kMaxNumRecords
_LENGTH = struct.Struct("<I")


class WarmupError(ValueError):
    """The warm-up file cannot be used; the version fails to load, as in TF Serving."""


@dataclass(frozen=True)
class WarmupRequest:
    signature: str
    inputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class Warmup:
    records: int
    requests: list[WarmupRequest]


def _write_array(array: np.ndarray, path: Path) -> dict[str, Any]:
    if array.dtype.kind in "OSU":
        parts = []
        for value in array.reshape(-1).tolist():
            data = value.encode() if isinstance(value, str) else bytes(value)
            parts += [_LENGTH.pack(len(data)), data]
        path.write_bytes(b"".join(parts))
        return {"dtype": "bytes", "shape": list(array.shape), "file": path.name}
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    path.write_bytes(np.ascontiguousarray(little).tobytes())
    return {"dtype": little.dtype.str, "shape": list(array.shape), "file": path.name}


def _read_array(spec: dict[str, Any], directory: Path) -> np.ndarray:
    data = (directory / spec["file"]).read_bytes()
    shape = tuple(int(d) for d in spec["shape"])
    if spec["dtype"] != "bytes":
        return np.frombuffer(data, dtype=np.dtype(spec["dtype"])).reshape(shape)
    values: list[bytes] = []
    offset = 0
    while offset < len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        values.append(data[offset : offset + length])
        offset += length
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


def write(out: Path, warmup: Warmup) -> None:
    out.mkdir(parents=True, exist_ok=True)
    requests = []
    for index, request in enumerate(warmup.requests):
        inputs = {
            key: _write_array(value, out / f"{index}_{n}.bin")
            for n, (key, value) in enumerate(sorted(request.inputs.items()))
        }
        requests.append({"signature": request.signature, "inputs": inputs})
    manifest = {"records": warmup.records, "requests": requests}
    (out / MANIFEST).write_text(json.dumps(manifest))


def write_error(out: Path, error: str) -> None:
    """Remember that the version's warm-up file is unusable (the version must fail to load)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps({"error": error}))


def load(directory: Path) -> Warmup | None:
    """The translated warm-up of a version, or None when its SavedModel has none; WarmupError
    when its warm-up file could not be translated."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    if manifest.get("error"):
        raise WarmupError(str(manifest["error"]))
    requests = [
        WarmupRequest(
            r["signature"], {k: _read_array(v, directory) for k, v in r["inputs"].items()}
        )
        for r in manifest["requests"]
    ]
    return Warmup(int(manifest["records"]), requests)


# -- the export child's side (TensorFlow is loaded there) ----------------------------------------


def _examples(input_proto: Any) -> np.ndarray:
    """TF Serving's serialized examples for an ``Input`` (tfsgate/core/example_input.py)."""
    rows = serialized_examples(input_proto)
    if rows is None:
        raise WarmupError(f"Input with kind {input_proto.WhichOneof('kind')} not supported.")
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def _signature(name: str) -> str:
    return name or "serving_default"


def translate(saved_model: Path, signature_inputs: dict[str, list[str]]) -> Warmup | None:
    """The warm-up requests of ``saved_model`` (None without a warm-up file), checked against
    its signatures (name -> input keys)."""
    path = saved_model / WARMUP_FILE
    if not path.exists():
        return None
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests: list[WarmupRequest] = []
    records = 0
    try:
        for record in tf.compat.v1.io.tf_record_iterator(str(path)):
            records += 1
            if records > MAX_RECORDS:
                raise WarmupError(
                    f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}"
                )
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
                raise WarmupError(f"Failed to parse warmup record from {path}: {exc}") from None
            requests += _requests(log, tf)
    except tf.errors.DataLossError as exc:
        raise WarmupError(
            f"{exc.message}. Please verify your warmup data is in TFRecord format."
        ) from None
    resolved = []
    for request in requests:
        known = signature_inputs.get(request.signature)
        if known is None:
            raise WarmupError(
                f"warm-up request names signature {request.signature!r}, which the model lacks"
            )
        if "" in request.inputs:  # serialized examples go to the signature's one input
            if len(known) != 1:
                raise WarmupError("Expected one input Tensor.")
            request = WarmupRequest(request.signature, {known[0]: request.inputs[""]})
        resolved.append(request)
    return Warmup(records, resolved)


def _requests(log: Any, tf: Any) -> list[WarmupRequest]:
    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        request = log.predict_log.request
        inputs = {k: np.asarray(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        return [WarmupRequest(_signature(request.model_spec.signature_name), inputs)]
    if kind in ("classify_log", "regress_log"):
        request = getattr(log, kind).request
        examples = _examples(request.input)
        return [WarmupRequest(_signature(request.model_spec.signature_name), {"": examples})]
    if kind == "multi_inference_log":
        request = log.multi_inference_log.request
        examples = _examples(request.input)
        return [
            WarmupRequest(_signature(task.model_spec.signature_name), {"": examples})
            for task in request.tasks
        ]
    raise WarmupError(f"Unsupported log_type for warmup: {kind}")
