"""A version's ``model.tflite`` served as TF Serving serves it with ``--prefer_tflite_model``.

TF Serving (``saved_model_bundle_factory.cc``) loads ``model.tflite`` instead of the SavedModel
when the flag is set and the file exists in the version directory; otherwise the SavedModel, as
without the flag. Its ``TfLiteSession::Create`` takes the signatures from the model's
``signature_defs_metadata`` (SignatureDef protos that ``signature_def_utils`` stores in a FlexBuffer
map), and without them generates one ``serving_default`` predict signature from the main
subgraph's input and output tensors, keyed by tensor name without ``:0``.

tfsgate does the same, with one addition in between: a model that carries signature runners (what
``tf.lite.TFLiteConverter`` writes for every TF2 signature) is served by them, under the keys of
the SavedModel's signature (``x`` -> ``y``), where TF Serving would generate ``serving_default_x``
-> ``PartitionedCall`` (two outputs ``PartitionedCall:0`` and ``:1`` even collide there). A client
of the SavedModel therefore works unchanged against its TFLite conversion.

Shapes: the signature shows the tensors' ``shape_signature`` with the leading dimension unknown,
since the runner resizes the inputs to whatever is fed (as TF Serving does) and Triton must let
any batch through. LiteRT (``ai_edge_litert``) reads the model here, without TensorFlow; the
runner that serves it is ``tfsgate/runtime/tflite_runner.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.converter.savedmodel import SavedModelError
from tfsgate.core import dtypes, protos
from tfsgate.core.signatures import (
    DEFAULT_SIGNATURE,
    PREDICT_METHOD,
    SignatureSpec,
    TensorSpec,
)

TFLITE_FILE = "model.tflite"
TFLITE = "tflite"  # the runner's name in runner.json, the catalog and the admin API
SIGNATURE_DEFS_METADATA = "signature_defs_metadata"  # tensorflow/lite/tools/signature


def has_tflite(version_dir: Path) -> bool:
    return (version_dir / TFLITE_FILE).is_file()


@dataclass(frozen=True)
class TfLitePlan:
    """What the runner needs for one signature: keys to interpreter tensor names, and the
    signature runner that serves it (None: tensors of the main subgraph)."""

    inputs: dict[str, str]
    outputs: dict[str, str]
    signature_runner: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "signature_runner": self.signature_runner,
            "inputs": self.inputs,
            "outputs": self.outputs,
        }


def _legacy_name(name: str) -> str:
    """TF Serving's ``TfToTfLiteLegacyTensorName``: the name up to its first ``:``."""
    return name.split(":", 1)[0]


def _spec(key: str, detail: dict[str, Any]) -> TensorSpec:
    try:
        dtype = dtypes.from_numpy(detail["dtype"]).tf_name
    except Exception as exc:  # noqa: BLE001 - TF Serving: "Unknown TfLite type"
        raise SavedModelError(f"Unknown TfLite type: {detail['dtype']}") from exc
    shape = [int(d) for d in detail.get("shape_signature", detail["shape"])]
    if shape:
        shape[0] = -1
    return TensorSpec(key=key, tensor_name=str(detail["name"]), dtype=dtype, shape=tuple(shape))


def _metadata_signatures(path: Path) -> dict[str, Any]:
    """SignatureDef protos from ``signature_defs_metadata`` ({} when the model has none)."""
    from ai_edge_litert import schema_py_generated as schema
    from flatbuffers import flexbuffers

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    for entry in model.metadata or []:
        if entry.name in (SIGNATURE_DEFS_METADATA, SIGNATURE_DEFS_METADATA.encode()):
            buffer = model.buffers[entry.buffer].data
            data = b"" if buffer is None else bytes(bytearray(buffer))
            break
    else:
        return {}
    found = {}
    try:
        root = flexbuffers.GetRoot(data).AsMap
        for index in range(len(root)):
            key, value = root.Keys[index].AsKey, root.Values[index]
            raw = value.AsStringBytes if value.IsString else value.AsBlob
            signature = protos.meta_graph_pb2.SignatureDef()
            signature.ParseFromString(bytes(raw))
            found[key] = signature
    except Exception as exc:  # noqa: BLE001 - TF Serving's wording for any parse failure
        raise SavedModelError(f"Invalid SignatureDefs found in TfLite model: {exc}") from exc
    return found


def read_tflite(version_dir: Path) -> tuple[dict[str, SignatureSpec], dict[str, TfLitePlan]]:
    """The signatures of ``version_dir/model.tflite`` and how the runner serves each; a model
    LiteRT cannot load (unknown op, bad file) raises ``SavedModelError`` with LiteRT's reason."""
    from ai_edge_litert.interpreter import Interpreter

    path = version_dir / TFLITE_FILE
    try:
        interpreter = Interpreter(model_path=str(path))
    except Exception as exc:  # noqa: BLE001 - LiteRT raises ValueError/RuntimeError
        raise SavedModelError(f"Cannot build Interpreter from {path}: {exc}") from exc
    tensors = {d["name"]: d for d in interpreter.get_input_details()}
    tensors.update({d["name"]: d for d in interpreter.get_output_details()})
    specs: dict[str, SignatureSpec] = {}
    plans: dict[str, TfLitePlan] = {}
    metadata = _metadata_signatures(path)
    if metadata:
        for name, signature in metadata.items():
            sides: list[dict[str, str]] = [{}, {}]
            for side, tensor_infos, what in (
                (0, signature.inputs, "input"),
                (1, signature.outputs, "output"),
            ):
                for key, info in tensor_infos.items():
                    tensor = info.name if info.name in tensors else _legacy_name(info.name)
                    if tensor not in tensors:
                        raise SavedModelError(
                            f"Signature {what} {key} references an unknown tensor: "
                            f"Unknown tensor '{info.name}'."
                        )
                    sides[side][key] = tensor
            specs[name] = SignatureSpec(
                name=name,
                method_name=signature.method_name,
                inputs={k: _spec(k, tensors[n]) for k, n in sides[0].items()},
                outputs={k: _spec(k, tensors[n]) for k, n in sides[1].items()},
            )
            plans[name] = TfLitePlan(sides[0], sides[1])
        return specs, plans
    runners = interpreter.get_signature_list()
    for name in runners:
        runner = interpreter.get_signature_runner(name)
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        specs[name] = SignatureSpec(
            name=name,
            method_name=PREDICT_METHOD,
            inputs={k: _spec(k, d) for k, d in inputs.items()},
            outputs={k: _spec(k, d) for k, d in outputs.items()},
        )
        plans[name] = TfLitePlan(
            {k: str(d["name"]) for k, d in inputs.items()},
            {k: str(d["name"]) for k, d in outputs.items()},
            signature_runner=name,
        )
    if specs:
        return specs, plans
    # TF Serving's generated signature: later tensors win a key both names shorten to.
    sides = [
        {_legacy_name(d["name"]): str(d["name"]) for d in sorted(details, key=lambda d: d["name"])}
        for details in (interpreter.get_input_details(), interpreter.get_output_details())
    ]
    specs[DEFAULT_SIGNATURE] = SignatureSpec(
        name=DEFAULT_SIGNATURE,
        method_name=PREDICT_METHOD,
        inputs={k: _spec(k, tensors[n]) for k, n in sides[0].items()},
        outputs={k: _spec(k, tensors[n]) for k, n in sides[1].items()},
    )
    plans[DEFAULT_SIGNATURE] = TfLitePlan(sides[0], sides[1])
    return specs, plans
