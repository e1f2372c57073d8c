"""Triton ``ModelConfig`` for one signature, built as Triton's own proto and written as text.

A signature whose inputs and outputs all lead with -1 gets ``max_batch_size > 0`` and
``dynamic_batching`` (Triton strips the batch dimension from ``dims``); any other gets
``max_batch_size: 0`` and its full shape. A batched tensor with no other dimension travels as
``[1]`` with ``reshape: []`` (Triton's documented idiom); a scalar of a non-batching model also
travels as ``[1]`` but the runner reshapes it, since Triton refuses scalars there. Unknown rank
becomes one variable dimension.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter.batching import BatchingConfig
from tfsgate.core import dtypes
from tfsgate.core.defaults import DEFAULT_MAX_BATCH_SIZE
from tfsgate.core.signatures import SignatureSpec, TensorSpec

# Tensors that are TF scalars but travel through Triton as [1] (comma-separated names).
SCALARS_PARAMETER = "scalar_tensors"


@dataclass(frozen=True)
class EngineOptions:
    """Server-wide engine settings every signature's config carries.

    Threads: ONNX Runtime's pools per Triton instance (``intra_op_threads``/``inter_op_threads``
    parameters of onnx_runner.py) and TensorFlow's process-wide pools in the shared worker
    (``--tensorflow_intra_op_parallelism``/``--tensorflow_inter_op_parallelism``; 0 lets
    TensorFlow choose, as in TF Serving)."""

    batching: BatchingConfig = field(default_factory=BatchingConfig)
    onnx_intra_op_threads: int = 1
    onnx_inter_op_threads: int = 1
    tf_intra_op_threads: int = 0
    tf_inter_op_threads: int = 0
    instances: int = 1
    custom_op_libraries: tuple[str, ...] = ()  # loaded by the TensorFlow worker (runner_model.py)
    tf_session_config: str = ""  # base64 ConfigProto for the worker's sessions ("" = its default)
    tflite_instances: int = 0  # --num_tflite_pools: instances of TFLite signatures (0: instances)


class UnsupportedSignature(ValueError):
    """The signature uses something Triton cannot carry (e.g. complex or resource tensors)."""


def _dims(spec: TensorSpec, batched: bool) -> tuple[list[int], list[int] | None]:
    """(config dims, reshape dims or None) for one tensor."""
    if spec.shape is None:
        return [-1], None
    if spec.travels_with_unit_dim(batched):
        # Triton refuses an empty reshape on a non-batching model ("scalar tensors are not
        # supported"), so a scalar travels as [1] and the runner reshapes it (SCALARS_PARAMETER).
        return [1], ([] if batched else None)
    return list(spec.shape[1:] if batched else spec.shape), None


def _data_type(spec: TensorSpec) -> int:
    entry = dtypes.BY_TF_NAME.get(spec.dtype)
    if entry is None or entry.config_type is None:
        raise UnsupportedSignature(f"{spec.key}: {spec.dtype} has no Triton equivalent")
    return mc.DataType.Value(entry.config_type)


def _fill(
    tensor: mc.ModelInput | mc.ModelOutput, spec: TensorSpec, batched: bool, prefix: str = ""
) -> None:
    tensor.name = prefix + spec.key
    tensor.data_type = _data_type(spec)  # type: ignore[assignment]
    dims, reshape = _dims(spec, batched)
    tensor.dims.extend(dims)
    if reshape is not None:
        tensor.reshape.shape.extend(reshape)


def build_model_config(
    triton_name: str,
    model: str,
    signature: SignatureSpec,
    versions: Iterable[int],
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    *,
    engine: EngineOptions | None = None,
    response_cache: bool = False,
) -> mc.ModelConfig:
    """The config for one (model, signature) Triton model serving exactly ``versions``.

    ``max_batch_size`` 0 turns batching off; otherwise a batched signature gets the batching of
    ``engine`` (see batching.py: Triton's own max_batch_size is 2**31-1, TF Serving's bound is the
    batcher's preferred size and the runner's rows per call)."""
    return _build(
        triton_name, model, {"": signature}, versions, max_batch_size, engine, response_cache, False
    )


def build_shared_config(
    triton_name: str,
    model: str,
    signatures: Mapping[str, SignatureSpec],
    versions: Iterable[int],
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    *,
    engine: EngineOptions | None = None,
    response_cache: bool = False,
) -> mc.ModelConfig:
    """The config of a model's shared Triton model (tfsgate/core/naming.py): every signature's
    tensors under its prefix (``signatures`` is keyed by prefix), each input optional since a
    request carries one signature's only. Its signatures are all batched or all unbatched (the
    converter shares them by that), so one ``max_batch_size`` fits them all."""
    return _build(
        triton_name, model, signatures, versions, max_batch_size, engine, response_cache, True
    )


def _build(
    triton_name: str,
    model: str,
    signatures: Mapping[str, SignatureSpec],
    versions: Iterable[int],
    max_batch_size: int,
    engine: EngineOptions | None,
    response_cache: bool,
    optional_inputs: bool,
) -> mc.ModelConfig:
    engine = engine or EngineOptions(batching=BatchingConfig(max_batch_size=max_batch_size or 1))
    batched = all(s.batched for s in signatures.values()) and max_batch_size > 0
    config = mc.ModelConfig(name=triton_name, backend="python")
    for prefix, signature in sorted(signatures.items()):
        for key in sorted(signature.inputs):
            _fill(config.input.add(), signature.inputs[key], batched, prefix)
            config.input[-1].optional = optional_inputs
        for key in sorted(signature.outputs):
            _fill(config.output.add(), signature.outputs[key], batched, prefix)
    config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_CPU, count=max(engine.instances, 1))
    if batched:
        engine.batching.apply(config)
    if response_cache:
        config.response_cache.enable = True
    for name, value in (
        ("intra_op_threads", engine.onnx_intra_op_threads),
        ("inter_op_threads", engine.onnx_inter_op_threads),
        ("tf_intra_op_threads", engine.tf_intra_op_threads),
        ("tf_inter_op_threads", engine.tf_inter_op_threads),
    ):
        config.parameters[name].string_value = str(value)
    if engine.custom_op_libraries:
        config.parameters["custom_op_libraries"].string_value = ",".join(engine.custom_op_libraries)
    if engine.tf_session_config:
        config.parameters["tf_session_config"].string_value = engine.tf_session_config
    config.version_policy.specific.versions.extend(sorted(versions))
    config.parameters["tf_model"].string_value = model
    names = sorted(s.name for s in signatures.values())
    config.parameters["signature"].string_value = ",".join(names)
    scalars = [
        prefix + t.key
        for prefix, signature in signatures.items()
        for t in (*signature.inputs.values(), *signature.outputs.values())
        if t.shape == () and not batched
    ]
    if scalars:
        config.parameters[SCALARS_PARAMETER].string_value = ",".join(sorted(scalars))
    return config


def to_text(config: mc.ModelConfig) -> str:
    return text_format.MessageToString(config)
