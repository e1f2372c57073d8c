"""The Triton config(s) that serve some versions of one signature, in load order, and the config
of a model's shared Triton model (its ONNX Runtime signatures together, one stub per version).

The python backend runs both runners (ONNX Runtime in-process, or the TensorFlow worker); a GPU
Triton (``--triton_flavor gpu``) gets the onnxruntime backend for signatures every version of which
ONNX Runtime serves, or an ensemble (parse step + ONNX graph) for ParseExample signatures
(``control_plane/converter/gpu.py``).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter import gpu
from control_plane.converter.batching import BatchingConfig, BatchingConfigError, read_per_model
from control_plane.converter.runner_files import read_runner
from control_plane.converter.tflite import TFLITE
from control_plane.converter.triton_config import (
    EngineOptions,
    build_model_config,
    build_shared_config,
)
from control_plane.converter.writer import SavedModelConverter
from control_plane.reconciler.settings import ReconcilerSettings
from tfsgate.core.naming import tensor_prefix
from tfsgate.core.signatures import SignatureSpec

log = logging.getLogger(__name__)


def signature_configs(
    settings: ReconcilerSettings,
    converter: SavedModelConverter,
    name: str,
    model: str,
    spec: SignatureSpec,
    versions: set[int],
    response_cache: bool,
) -> list[mc.ModelConfig]:
    engine, max_batch_size = _engine(settings, converter, name, versions)
    python = build_model_config(
        name,
        model,
        spec,
        versions,
        max_batch_size,
        engine=engine,
        response_cache=response_cache,
    )
    runners = [read_runner(converter.repository / name / str(v)) for v in versions]
    if (
        settings.engine.tflite_instances > 0
        and runners
        and all(r is not None and r.runner == TFLITE for r in runners)
    ):
        # --num_tflite_pools: TF Serving's interpreters that run in parallel; here each Triton
        # instance of a TFLite signature is one interpreter.
        python.instance_group[0].count = settings.engine.tflite_instances
    if settings.flavor != "gpu" or not versions:
        return [python]
    if any(r is None or r.runner != "onnxruntime" for r in runners):
        return [python]
    repository = str(converter.repository)
    options = settings.gpu_options
    if all(r is not None and not r.parse for r in runners):
        if not gpu.can_run_on_gpu(spec, python.max_batch_size > 0):
            return [python]
        return [
            gpu.onnx_config(
                name, model, spec, versions, engine, options, repository, response_cache
            )
        ]
    first = runners[0]
    if len(versions) == 1 and first is not None and first.parse:
        (version,) = versions
        return gpu.ensemble_configs(
            name,
            model,
            spec,
            version,
            first.parse,
            first.onnx_inputs,
            engine,
            options,
            repository,
            response_cache,
        )
    return [python]


def shared_config(
    settings: ReconcilerSettings,
    converter: SavedModelConverter,
    name: str,
    model: str,
    specs: dict[str, SignatureSpec],
    versions: set[int],
    response_cache: bool,
) -> mc.ModelConfig:
    """The model's shared Triton model (tfsgate/core/naming.py) serving ``specs`` by name."""
    engine, max_batch_size = _engine(settings, converter, name, versions)
    return build_shared_config(
        name,
        model,
        {tensor_prefix(k): v for k, v in specs.items()},
        versions,
        max_batch_size,
        engine=engine,
        response_cache=response_cache,
    )


def _engine(
    settings: ReconcilerSettings, converter: SavedModelConverter, name: str, versions: set[int]
) -> tuple[EngineOptions, int]:
    """The engine options and max_batch_size of Triton model ``name``."""
    engine, max_batch_size = settings.engine, settings.max_batch_size
    if settings.per_model_batching and engine.batching.enabled and versions:
        # The newest version's own parameters (one Triton config serves every version).
        try:
            own = read_per_model(converter.repository / name / str(max(versions)))
        except BatchingConfigError as exc:  # converted before the flag: checked only with it
            log.warning("%s: batching_params.pbtxt not used: %s", name, exc)
            own = None
        batching = own or BatchingConfig()
        engine = replace(engine, batching=batching)
        max_batch_size = batching.max_batch_size
    return engine, max_batch_size


def composing_models(name: str) -> tuple[str, str]:
    """The steps of a GPU ensemble named ``name``, unloaded with it."""
    return name + gpu.PARSE_SUFFIX, name + gpu.ONNX_SUFFIX
