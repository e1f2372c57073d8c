"""GPU-flavor configs (``--triton_flavor gpu``): onnxruntime_onnx models with KIND_GPU instances and
TensorRT, ensembles for signatures that parse tf.Examples, the python backend for the rest; every
config is a ModelConfig parsed back from its text. The ensemble's parse step runs on the CPU, so
it is served here by the embedded Triton."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter import gpu
from control_plane.converter.batching import BatchingConfig
from control_plane.converter.runner_files import read_runner
from control_plane.converter.triton_config import EngineOptions
from control_plane.converter.writer import ConvertedVersion, SavedModelConverter
from control_plane.triton.embedded import EmbeddedTriton
from control_plane.triton.repository import TritonRepositoryClient
from tests.support.tf_example import example

ENGINE = EngineOptions(batching=BatchingConfig(enabled=True, max_batch_size=64))
OPTIONS = gpu.GpuOptions(instances=2)


def parsed(config: mc.ModelConfig) -> mc.ModelConfig:
    back = mc.ModelConfig()
    text_format.Parse(text_format.MessageToString(config), back)
    return back


@pytest.fixture(scope="module")
def converted(
    tmp_path_factory: pytest.TempPathFactory, saved_models: dict[str, Path]
) -> tuple[SavedModelConverter, ConvertedVersion]:
    repository = tmp_path_factory.mktemp("gpu") / "repository"
    converter = SavedModelConverter(repository, flavor="gpu")
    return converter, converter.convert("hpt", 1, saved_models["half_plus_two"])


def test_onnx_signature_runs_on_the_gpu_with_tensorrt(
    converted: tuple[SavedModelConverter, ConvertedVersion],
) -> None:
    converter, version = converted
    spec = version.signatures["serving_default"]
    config = parsed(
        gpu.onnx_config(
            "hpt__serving_default", "hpt", spec, [1], ENGINE, OPTIONS, str(converter.repository)
        )
    )
    assert config.platform == "onnxruntime_onnx" and not config.backend
    assert config.default_model_filename == "model.onnx"
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (mc.ModelInstanceGroup.KIND_GPU, 2)
    ]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_engine_cache_enable"] == "true"
    assert accelerator.parameters["trt_engine_cache_path"].endswith(
        "hpt__serving_default/trt_cache"
    )
    assert list(config.dynamic_batching.preferred_batch_size) == [64]
    assert "execution_batch_size" not in config.parameters  # the python runner's, not ORT's
    assert (converter.repository / "hpt__serving_default" / "1" / "model.onnx").exists()


def test_examples_signature_is_an_ensemble(
    converted: tuple[SavedModelConverter, ConvertedVersion],
) -> None:
    converter, version = converted
    runner = read_runner(converter.repository / "hpt__regress_x_to_y" / "1")
    assert runner is not None and runner.parse is not None
    configs = [
        parsed(c)
        for c in gpu.ensemble_configs(
            "hpt__regress_x_to_y",
            "hpt",
            version.signatures["regress_x_to_y"],
            1,
            runner.parse,
            runner.onnx_inputs,
            ENGINE,
            OPTIONS,
            str(converter.repository),
        )
    ]
    parse, graph, ensemble = configs
    assert parse.name == "hpt__regress_x_to_y__parse" and parse.backend == "python"
    assert parse.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert [o.name for o in parse.output] == ["x"]
    assert graph.platform == "onnxruntime_onnx" and [i.name for i in graph.input] == ["x"]
    assert ensemble.platform == "ensemble"
    assert [i.name for i in ensemble.input] == ["inputs"]
    assert [o.name for o in ensemble.output] == ["outputs"]
    first, second = ensemble.ensemble_scheduling.step
    assert (first.model_name, first.model_version) == ("hpt__regress_x_to_y__parse", 1)
    assert dict(first.output_map) == {"x": "feature_x"}
    assert dict(second.input_map) == {"x": "feature_x"}
    assert dict(second.output_map) == {"outputs": "outputs"}
    for step in ("__parse", "__onnx"):
        assert (converter.repository / f"hpt__regress_x_to_y{step}" / "1").is_dir()


def test_unbatched_scalars_stay_on_the_python_backend(saved_models: dict[str, Path]) -> None:
    from control_plane.converter.savedmodel import read_signatures

    scalar = read_signatures(saved_models["unbatched"])["scalar"]
    assert not gpu.can_run_on_gpu(scalar, batched=False)
    vector = read_signatures(saved_models["unbatched"])["serving_default"]
    assert gpu.can_run_on_gpu(vector, batched=False)


@pytest.fixture(scope="module")
def parse_step(
    converted: tuple[SavedModelConverter, ConvertedVersion],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The ensemble's CPU step alone in the embedded Triton."""
    converter, version = converted
    runner = read_runner(converter.repository / "hpt__regress_x_to_y" / "1")
    assert runner is not None and runner.parse is not None
    parse, _, _ = gpu.ensemble_configs(
        "hpt__regress_x_to_y",
        "hpt",
        version.signatures["regress_x_to_y"],
        1,
        runner.parse,
        runner.onnx_inputs,
        ENGINE,
        OPTIONS,
        str(converter.repository),
    )
    converter.write_config(parse)
    triton = EmbeddedTriton(converter.repository, tmp_path_factory.mktemp("gpu-home"))
    endpoints = triton.start()

    async def load() -> None:
        await triton.wait_ready()
        client = TritonRepositoryClient(endpoints.grpc_url)
        try:
            await client.load(parse.name, parse)
        finally:
            await client.close()

    try:
        asyncio.run(load())
        yield endpoints.grpc_url
    finally:
        triton.stop()


@pytest.mark.triton  # starts tritonserver
def test_parse_step_returns_the_features(parse_step: str) -> None:
    rows = np.array([example(x=1.0), example(x=4.0)], dtype=object)
    with triton_grpc.InferenceServerClient(parse_step) as client:
        tensor = triton_grpc.InferInput("inputs", [2], "BYTES")
        tensor.set_data_from_numpy(rows)
        result = client.infer("hpt__regress_x_to_y__parse", [tensor])
    np.testing.assert_array_equal(result.as_numpy("x"), [[1.0], [4.0]])
