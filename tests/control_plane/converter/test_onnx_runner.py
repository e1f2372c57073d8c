"""Signatures converted with tf2onnx, checked for parity, and served by ONNX Runtime inside a real
tritonserver; signatures that fail either step are served by TensorFlow with the reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from control_plane.converter import triton_config
from control_plane.converter.exporter import ExportOptions
from control_plane.converter.runner_files import read_runner
from control_plane.converter.writer import ConversionRefused, SavedModelConverter
from control_plane.triton.embedded import EmbeddedTriton
from control_plane.triton.repository import TritonRepositoryClient
from tests.support.procs import stubs_of
from tests.support.tf_example import example

pytestmark = pytest.mark.triton  # starts tritonserver

MODELS = ["half_plus_two", "multi_io", "unbatched", "legacy_tf1"]


class Served:
    def __init__(self, triton: EmbeddedTriton, repository: Path, runners: dict) -> None:
        self.triton = triton
        self.repository = repository
        self.runners = runners  # (model, signature) -> SignatureRunner

    @property
    def url(self) -> str:
        assert self.triton.endpoints is not None
        return self.triton.endpoints.grpc_url


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, saved_models: dict[str, Path]
) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("onnx")
    repository = base / "repository"
    converter = SavedModelConverter(repository)
    configs = []
    runners = {}
    for name in MODELS:
        source = saved_models[name]
        converted = converter.convert(name, int(source.name), source)
        for signature, triton_name in converted.triton_models.items():
            runners[(name, signature)] = converted.runners[signature]
            config = triton_config.build_model_config(
                triton_name, name, converted.signatures[signature], [converted.version]
            )
            converter.write_config(config)
            configs.append(config)
    triton = EmbeddedTriton(repository, base / "home")
    triton.start()

    async def load() -> None:
        await triton.wait_ready()
        client = TritonRepositoryClient(triton.endpoints.grpc_url)  # type: ignore[union-attr]
        try:
            await asyncio.gather(*(client.load(c.name, c) for c in configs))
        finally:
            await client.close()

    try:
        asyncio.run(load())
        yield Served(triton, repository.resolve(), runners)
    finally:
        triton.stop()


@pytest.fixture
def client(served: Served) -> Iterator[triton_grpc.InferenceServerClient]:
    with triton_grpc.InferenceServerClient(served.url) as client:
        yield client


def infer(
    client: triton_grpc.InferenceServerClient, model: str, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    types = {np.dtype(np.float32): "FP32", np.dtype(object): "BYTES"}
    tensors = []
    for name, value in inputs.items():
        tensor = triton_grpc.InferInput(name, list(value.shape), types[value.dtype])
        tensor.set_data_from_numpy(value)
        tensors.append(tensor)
    result = client.infer(model, tensors)
    return {o.name: result.as_numpy(o.name) for o in result.get_response().outputs}


def examples(*rows: bytes) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = list(rows)
    return out


def test_half_plus_two_runs_entirely_on_onnxruntime(served: Served) -> None:
    for signature in (
        "serving_default",
        "classify_x_to_y",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    ):
        runner = served.runners[("half_plus_two", signature)]
        assert runner.runner == "onnxruntime", (signature, runner.fallback_reason)
        assert runner.max_abs_error == 0.0
        assert runner.parity_cases == 9
        evidence = read_runner(served.repository / f"half_plus_two__{signature}" / "123")
        assert evidence is not None and evidence.runner == "onnxruntime"


def test_predict_and_examples_answers(client: triton_grpc.InferenceServerClient) -> None:
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    out = infer(client, "half_plus_two__serving_default", {"x": x})
    assert out["y"].tolist() == [[2.5], [3.0], [4.5]]
    out = infer(client, "half_plus_two__regress_x2_to_y3", {"inputs": x})
    assert out["outputs"].tolist() == [[3.5], [4.0], [5.5]]
    rows = examples(example(x=1.0), example(x=2.0), example(x=5.0))
    assert infer(client, "half_plus_two__classify_x_to_y", {"inputs": rows})["scores"].tolist() == [
        [2.5],
        [3.0],
        [4.5],
    ]
    assert infer(client, "half_plus_two__regress_x_to_y2", {"inputs": rows})[
        "outputs"
    ].tolist() == [
        [3.5],
        [4.0],
        [5.5],
    ]


def test_missing_feature_is_tensorflows_error(client: triton_grpc.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as caught:
        infer(client, "half_plus_two__regress_x_to_y", {"inputs": examples(example(y=1.0))})
    assert "Feature: x (data type: float) is required but could not be found." in str(caught.value)
    assert "[[{{node ParseExample/ParseExampleV2}}]]" in str(caught.value)
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_unsupported_op_falls_back_to_tensorflow(
    served: Served, client: triton_grpc.InferenceServerClient
) -> None:
    runner = served.runners[("multi_io", "serving_default")]
    assert runner.runner == "tensorflow"
    assert "StringLength" in runner.fallback_reason
    tags = examples(b"ab", "\u00e9".encode()).reshape(2, 1)
    out = infer(
        client,
        "multi_io__serving_default",
        {"a": np.ones((2, 2), np.float32), "b": np.ones((2, 2), np.float32), "tag": tags},
    )
    assert out["tag_length"].reshape(-1).tolist() == [2, 2]


def test_parity_failure_falls_back_to_tensorflow_with_the_figures(
    served: Served, client: triton_grpc.InferenceServerClient
) -> None:
    """tf2onnx translates AsString(precision=1) as a plain Cast: "2" where TensorFlow says "2.0"."""
    runner = served.runners[("unbatched", "scalar")]
    assert runner.runner == "tensorflow"
    assert runner.fallback_reason.startswith("parity check failed: zeros: output 'label'")
    assert "b'0.0'" in runner.fallback_reason
    out = infer(client, "unbatched__scalar", {"s": np.array([2.0], np.float32)})
    assert out["label"].tolist() == [b"2.0"]
    assert served.runners[("unbatched", "serving_default")].runner == "onnxruntime"


def test_legacy_tf1_graph(served: Served, client: triton_grpc.InferenceServerClient) -> None:
    """A scalar examples placeholder fed a vector, examples declared DT_FLOAT, an asset table."""
    assert served.runners[("legacy_tf1", "serving_default")].runner == "onnxruntime"
    assert served.runners[("legacy_tf1", "tensorflow/serving/regress")].runner == "onnxruntime"
    level = served.runners[("legacy_tf1", "regress_level")]
    assert level.runner == "tensorflow" and "HashTable" in level.fallback_reason
    name = "legacy_tf1__tensorflow_serving_regress-"
    model = next(p.name for p in served.repository.iterdir() if p.name.startswith(name))
    out = infer(client, model, {"inputs": examples(example(x=1.0), example(x=4.0))})
    assert out["outputs"].tolist() == [[3.5], [5.0]]


def test_onnx_stubs_are_small(served: Served) -> None:
    """An ONNX Runtime stub is python + numpy + onnxruntime: about 70 MB, no TensorFlow."""
    stubs = stubs_of(served.repository)
    onnx = [p for p in stubs if "half_plus_two" in p.cmdline]
    assert len(onnx) == 5
    assert all(p.rss < 100 << 20 for p in onnx), [p.rss >> 20 for p in onnx]


def test_forcing_onnxruntime_is_refused_with_the_figures(
    tmp_path: Path, saved_models: dict[str, Path]
) -> None:
    converter = SavedModelConverter(tmp_path / "repository")
    with pytest.raises(ConversionRefused) as caught:
        converter.convert("unbatched", 1, saved_models["unbatched"], runner="onnxruntime")
    assert "signature 'scalar': parity check failed" in str(caught.value)
    assert not (tmp_path / "repository" / "unbatched__scalar").exists()


def test_zero_tolerance_refuses_an_inexact_conversion(
    tmp_path: Path, saved_models: dict[str, Path]
) -> None:
    """multi_io's ``sum`` is exact; a model whose float results differ in the last bit is not,
    and a tolerance of 0 must refuse it (see tests of parity.compare for the rule itself)."""
    converter = SavedModelConverter(tmp_path / "repository", ExportOptions(atol=0.0, rtol=0.0))
    converted = converter.convert("half_plus_two", 123, saved_models["half_plus_two"])
    # 0.5 * x + 2 is exact in float32 in both engines: zero tolerance still passes.
    assert converted.runners["serving_default"].runner == "onnxruntime"
    verdict = json.loads(
        (
            tmp_path / "repository" / "half_plus_two__serving_default" / "123" / "runner.json"
        ).read_text()
    )
    assert verdict["evidence"]["max_abs_error"] == 0.0


def test_large_models_keep_their_weights_in_external_data(
    tmp_path: Path, saved_models: dict[str, Path]
) -> None:
    """The path a SavedModel over 2 GB takes (forced here on a small MLP): weights in files
    beside model.onnx, parity checked on the model loaded from them."""
    options = ExportOptions(large_model_bytes=1)
    converter = SavedModelConverter(tmp_path / "repository", options)
    converted = converter.convert("mlp", 1, saved_models["small_mlp"])
    runner = converted.runners["serving_default"]
    assert runner.runner == "onnxruntime", runner.fallback_reason
    # Passing parity is the check (atol + rtol x magnitude: its cases include extreme inputs, so
    # the absolute error itself can be well above 1e-3 on large outputs).
    assert runner.max_abs_error is not None and runner.parity_cases >= 9
    version = tmp_path / "repository" / "mlp__serving_default" / "1"
    external = [
        p for p in version.iterdir() if p.name not in {"model.onnx", "model.py", "runner.json"}
    ]
    assert external, sorted(p.name for p in version.iterdir())
    assert (version / "model.onnx").stat().st_size < 64 * 64 * 4  # the weights are elsewhere
