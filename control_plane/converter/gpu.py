"""Triton configs for a GPU Triton (``--triton_flavor gpu`` with an external ``--triton_url``).

The same converted files serve both flavors. On a GPU Triton:

- an ONNX Runtime signature is a ``platform: "onnxruntime_onnx"`` model (``model.onnx`` of its
  version directory) with ``KIND_GPU`` instances and ONNX Runtime's TensorRT execution accelerator
  (FP16 by default, engine cache on; Triton's onnxruntime backend documents the parameters);
- a signature that starts with ParseExample is an ``ensemble``: ``<name>__parse`` (python backend
  on the CPU: tfsgate/runtime/onnx_runner.py in parse-only mode, returning the dense features) then
  ``<name>__onnx`` (the ONNX graph on the GPU). Ensemble steps name one version of each composing
  model, so this shape is used while one version of the signature is served; with more, the
  signature stays on the python backend;
- everything else (TensorFlow-served signatures, scalars Triton cannot carry to an ONNX model) is
  the python backend, as on the CPU flavor: TensorFlow must then be installed in the Triton image
  (docs/gpu.md).

All configs are ``ModelConfig`` protos built here, never text templates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter import triton_config
from control_plane.converter.triton_config import EngineOptions
from tfsgate.core.signatures import SignatureSpec, TensorSpec

PARSE_SUFFIX = "__parse"
ONNX_SUFFIX = "__onnx"
# Parameters of the python runners that mean nothing to the onnxruntime backend.
_PYTHON_ONLY = (
    "execution_batch_size",
    "max_request_rows",
    "large_batch_splitting",
    "intra_op_threads",
    "inter_op_threads",
    "tf_intra_op_threads",
    "tf_inter_op_threads",
    triton_config.SCALARS_PARAMETER,
)
_FEATURE_TYPES = {"float32": "DT_FLOAT", "int64": "DT_INT64", "string": "DT_STRING"}


@dataclass(frozen=True)
class GpuOptions:
    instances: int = 1
    precision: str = "FP16"  # TensorRT precision_mode: FP32, FP16 or INT8
    engine_cache: bool = True
    engine_cache_path: str = ""  # default: trt_cache beside the model's versions
    max_workspace_bytes: int = 1 << 30


def _gpu_onnx(config: mc.ModelConfig, gpu: GpuOptions, cache_path: str) -> mc.ModelConfig:
    config.ClearField("backend")
    config.platform = "onnxruntime_onnx"
    config.default_model_filename = "model.onnx"
    del config.instance_group[:]
    config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_GPU, count=max(gpu.instances, 1))
    for name in _PYTHON_ONLY:
        if name in config.parameters:
            del config.parameters[name]
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add()
    accelerator.name = "tensorrt"
    accelerator.parameters["precision_mode"] = gpu.precision
    accelerator.parameters["max_workspace_size_bytes"] = str(gpu.max_workspace_bytes)
    if gpu.engine_cache:
        accelerator.parameters["trt_engine_cache_enable"] = "true"
        accelerator.parameters["trt_engine_cache_path"] = cache_path
    return config


def onnx_config(
    name: str,
    model: str,
    signature: SignatureSpec,
    versions: Iterable[int],
    engine: EngineOptions,
    gpu: GpuOptions,
    repository: str,
    response_cache: bool = False,
) -> mc.ModelConfig:
    """An ONNX Runtime signature on the GPU."""
    config = triton_config.build_model_config(
        name,
        model,
        signature,
        versions,
        engine.batching.max_batch_size,
        engine=engine,
        response_cache=response_cache,
    )
    cache = gpu.engine_cache_path or f"{repository}/{name}/trt_cache"
    return _gpu_onnx(config, gpu, cache)


def ensemble_configs(
    name: str,
    model: str,
    signature: SignatureSpec,
    version: int,
    parse: Mapping[str, Any],
    onnx_inputs: Iterable[str],
    engine: EngineOptions,
    gpu: GpuOptions,
    repository: str,
    response_cache: bool = False,
) -> list[mc.ModelConfig]:
    """``<name>__parse`` (CPU), ``<name>__onnx`` (GPU) and the ensemble ``<name>``, in load order.

    ``parse`` is the converter's ParseExample plan (input key, node, features)."""
    wanted = sorted(set(onnx_inputs))
    features = {f["key"]: f for f in parse["features"]}
    feature_specs = {
        key: TensorSpec(
            key,
            f"{key}:0",
            _FEATURE_TYPES[features[key]["dtype"]],
            (-1, *(int(d) for d in features[key]["shape"])),
        )
        for key in wanted
    }
    examples = signature.inputs[parse["input"]]
    outer = triton_config.build_model_config(
        name,
        model,
        signature,
        [version],
        engine.batching.max_batch_size,
        engine=engine,
        response_cache=response_cache,
    )
    batched = outer.max_batch_size > 0
    # The parse model: the signature's examples in, the dense features out.
    parse_signature = SignatureSpec(
        signature.name, signature.method_name, {examples.key: examples}, feature_specs
    )
    parse_config = triton_config.build_model_config(
        name + PARSE_SUFFIX,
        model,
        parse_signature,
        [version],
        engine.batching.max_batch_size if batched else 0,
        engine=engine,
    )
    # The graph: the features in, the signature's outputs out.
    onnx_signature = SignatureSpec(
        signature.name, signature.method_name, feature_specs, signature.outputs
    )
    onnx = triton_config.build_model_config(
        name + ONNX_SUFFIX,
        model,
        onnx_signature,
        [version],
        engine.batching.max_batch_size if batched else 0,
        engine=engine,
    )
    cache = gpu.engine_cache_path or f"{repository}/{name}{ONNX_SUFFIX}/trt_cache"
    _gpu_onnx(onnx, gpu, cache)
    # The ensemble keeps the signature's interface; Triton's ensemble scheduler batches nothing
    # itself, the composing models do.
    ensemble = mc.ModelConfig(name=name, platform="ensemble", max_batch_size=outer.max_batch_size)
    ensemble.input.extend(outer.input)
    ensemble.output.extend(outer.output)
    ensemble.version_policy.specific.versions.append(version)
    if response_cache:
        ensemble.response_cache.enable = True
    step = ensemble.ensemble_scheduling.step.add(
        model_name=name + PARSE_SUFFIX, model_version=version
    )
    step.input_map[examples.key] = examples.key
    for key in wanted:
        step.output_map[key] = f"feature_{key}"
    step = ensemble.ensemble_scheduling.step.add(
        model_name=name + ONNX_SUFFIX, model_version=version
    )
    for key in wanted:
        step.input_map[key] = f"feature_{key}"
    for key in signature.outputs:
        step.output_map[key] = key
    return [parse_config, onnx, ensemble]


def can_run_on_gpu(signature: SignatureSpec, batched: bool) -> bool:
    """Triton cannot hand an ONNX model a scalar of an unbatched signature (the python runner
    reshapes it), so those stay on the python backend."""
    tensors = (*signature.inputs.values(), *signature.outputs.values())
    return batched or not any(t.shape == () for t in tensors)
