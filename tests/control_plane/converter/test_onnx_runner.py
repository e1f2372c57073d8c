"""Signatures converted with tf2onnx, checked for parity, and served by ONNX Runtime inside a real
tritonserver; signatures that fail either step are served by TensorFlow with the reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from control_plane.converter.exporter import ExportOptions
from control_plane.converter.runner_files import read_runner
from control_plane.converter.writer import ConversionRefused, SavedModelConverter
from control_plane.triton.embedded import EmbeddedTriton
from control_plane.triton.repository import TritonRepositoryClient
from tests.support.converted import infer_signature, version_configs
from tests.support.procs import stubs_of
from tests.support.tf_example import example
from tfsgate.core.naming import is_shared, tensor_prefix

pytestmark = pytest.mark.triton  # starts tritonserver

MODELS = ["half_plus_two", "multi_io", "unbatched", "legacy_tf1"]


class Served:
    def __init__(
        self, triton: EmbeddedTriton, repository: Path, runners: dict, names: dict
    ) -> None:
        self.triton = triton
        self.repository = repository
        self.runners = runners  # (model, signature) -> SignatureRunner
        self.names = names  # (model, signature) -> Triton model name

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
    runners, names = {}, {}
    for name in MODELS:
        source = saved_models[name]
        converted = converter.convert(name, int(source.name), source)
        for signature, triton_name in converted.triton_models.items():
            runners[(name, signature)] = converted.runners[signature]
            names[(name, signature)] = triton_name
        for config in version_configs(converted):
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
        yield Served(triton, repository.resolve(), runners, names)
    finally:
        triton.stop()


@pytest.fixture
def client(served: Served) -> Iterator[triton_grpc.InferenceServerClient]:
    with triton_grpc.InferenceServerClient(served.url) as client:
        yield client


@pytest.fixture
def infer(
    served: Served, client: triton_grpc.InferenceServerClient
) -> Callable[[str, str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """A call to (model, signature) wherever it is served, tensors by signature key."""

    def call(model: str, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        name = served.names[(model, signature)]
        prefix = tensor_prefix(signature) if is_shared(model, name) else ""
        return infer_signature(client, name, prefix, inputs)

    return call


Infer = Callable[[str, str, dict[str, np.ndarray]], dict[str, np.ndarray]]


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
        evidence = read_runner(
            served.repository / served.names[("half_plus_two", signature)] / "123", signature
        )
        assert evidence is not None and evidence.runner == "onnxruntime"
    # One stub per version for the batched signatures, one for the unbatched (tf.Example) ones.
    shared = {served.names[("half_plus_two", s)] for s in ("serving_default", "regress_x2_to_y3")}
    examples = {served.names[("half_plus_two", s)] for s in ("classify_x_to_y", "regress_x_to_y")}
    assert shared == {"half_plus_two"} and examples == {"half_plus_two__.unbatched"}


def test_predict_and_examples_answers(infer: Infer) -> None:
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    out = infer("half_plus_two", "serving_default", {"x": x})
    assert out["y"].tolist() == [[2.5], [3.0], [4.5]]
    out = infer("half_plus_two", "regress_x2_to_y3", {"inputs": x})
    assert out["outputs"].tolist() == [[3.5], [4.0], [5.5]]
    rows = examples(example(x=1.0), example(x=2.0), example(x=5.0))
    assert infer("half_plus_two", "classify_x_to_y", {"inputs": rows})["scores"].tolist() == [
        [2.5],
        [3.0],
        [4.5],
    ]
    assert infer("half_plus_two", "regress_x_to_y2", {"inputs": rows})["outputs"].tolist() == [
        [3.5],
        [4.0],
        [5.5],
    ]


def test_one_stub_serves_concurrent_signatures(infer: Infer) -> None:
    """Requests of different signatures reach the shared stub together (Triton's dynamic
    batcher hands them over in one execute): each gets its own signature's answer."""
    x = np.array([[1.0], [3.0]], np.float32)
    calls = [("serving_default", [[2.5], [3.5]]), ("regress_x2_to_y3", [[3.5], [4.5]])] * 16
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda c: infer(
                    "half_plus_two", c[0], {"x" if c[0] == "serving_default" else "inputs": x}
                ),
                calls,
            )
        )
    for (signature, expected), out in zip(calls, answers, strict=True):
        assert next(iter(out.values())).tolist() == expected, signature


def test_inputs_of_two_signatures_in_one_request_are_refused(
    client: triton_grpc.InferenceServerClient,
) -> None:
    x = np.array([[1.0]], np.float32)
    both = {"serving_default/x": x, "regress_x2_to_y3/inputs": x}
    with pytest.raises(InferenceServerException) as caught:
        infer_signature(client, "half_plus_two", "", both)
    assert "the inputs of a request belong to one signature" in str(caught.value)


def test_missing_feature_is_tensorflows_error(infer: Infer) -> None:
    with pytest.raises(InferenceServerException) as caught:
        infer("half_plus_two", "regress_x_to_y", {"inputs": examples(example(y=1.0))})
    assert "Feature: x (data type: float) is required but could not be found." in str(caught.value)
    assert "[[{{node ParseExample/ParseExampleV2}}]]" in str(caught.value)
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_unsupported_op_falls_back_to_tensorflow(served: Served, infer: Infer) -> None:
    runner = served.runners[("multi_io", "serving_default")]
    assert runner.runner == "tensorflow"
    assert "StringLength" in runner.fallback_reason
    assert served.names[("multi_io", "serving_default")] == "multi_io__serving_default"
    tags = examples(b"ab", "\u00e9".encode()).reshape(2, 1)
    out = infer(
        "multi_io",
        "serving_default",
        {"a": np.ones((2, 2), np.float32), "b": np.ones((2, 2), np.float32), "tag": tags},
    )
    assert out["tag_length"].reshape(-1).tolist() == [2, 2]


def test_parity_failure_falls_back_to_tensorflow_with_the_figures(
    served: Served, infer: Infer
) -> None:
    """tf2onnx translates AsString(precision=1) as a plain Cast: "2" where TensorFlow says "2.0"."""
    runner = served.runners[("unbatched", "scalar")]
    assert runner.runner == "tensorflow"
    assert runner.fallback_reason.startswith("parity check failed: zeros: output 'label'")
    assert "b'0.0'" in runner.fallback_reason
    out = infer("unbatched", "scalar", {"s": np.array([2.0], np.float32)})
    assert out["label"].tolist() == [b"2.0"]
    assert served.runners[("unbatched", "serving_default")].runner == "onnxruntime"


def test_legacy_tf1_graph(served: Served, infer: Infer) -> None:
    """A scalar examples placeholder fed a vector, examples declared DT_FLOAT, an asset table."""
    assert served.runners[("legacy_tf1", "serving_default")].runner == "onnxruntime"
    assert served.runners[("legacy_tf1", "tensorflow/serving/regress")].runner == "onnxruntime"
    level = served.runners[("legacy_tf1", "regress_level")]
    assert level.runner == "tensorflow" and "HashTable" in level.fallback_reason
    rows = examples(example(x=1.0), example(x=4.0))
    out = infer("legacy_tf1", "tensorflow/serving/regress", {"inputs": rows})
    assert out["outputs"].tolist() == [[3.5], [5.0]]


def test_onnx_stubs_are_small(served: Served) -> None:
    """An ONNX Runtime stub is python + numpy + onnxruntime: about 70 MB, no TensorFlow, and
    half_plus_two's five signatures take two of them (batched, unbatched), not five."""
    stubs = stubs_of(served.repository)
    onnx = [p for p in stubs if "half_plus_two" in p.cmdline]
    assert len(onnx) == 2, [p.cmdline for p in onnx]
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
    assert converted.triton_models["serving_default"] == "half_plus_two"
    verdict = json.loads(
        (tmp_path / "repository" / "half_plus_two" / "123" / "runner.json").read_text()
    )
    assert verdict["signatures"]["serving_default"]["evidence"]["max_abs_error"] == 0.0


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
    version = tmp_path / "repository" / "mlp" / "1" / "signatures" / "serving_default"
    external = [p for p in version.iterdir() if p.name != "model.onnx"]
    assert external, sorted(p.name for p in version.iterdir())
    assert (version / "model.onnx").stat().st_size < 64 * 64 * 4  # the weights are elsewhere
