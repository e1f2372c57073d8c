"""The model's shared Triton models (tfsgate/core/naming.py): names that never collide with a
signature's own, their configs (parsed back), where the converter places each signature, and
the routing table carrying the tensor prefix. Served end to end in test_onnx_runner.py and every
gateway test on an ONNX-served model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter.exporter import ONNXRUNTIME, TENSORFLOW, SignatureRunner
from control_plane.converter.triton_config import build_shared_config
from control_plane.converter.writer import SavedModelConverter
from tfsgate.core.naming import (
    belongs_to,
    is_shared,
    shared_model_name,
    tensor_prefix,
    triton_model_name,
)
from tfsgate.core.routing_table import ModelRoute, RoutingTable, VersionRoute
from tfsgate.core.signatures import SignatureSpec, TensorSpec

X = TensorSpec("x", "x:0", "DT_FLOAT", (-1, 1))
Y = TensorSpec("y", "y:0", "DT_FLOAT", (-1, 1))
EXAMPLES = TensorSpec("inputs", "tf_example:0", "DT_STRING", None)
SCORES = TensorSpec("scores", "s:0", "DT_FLOAT", (-1, 1))
PREDICT = SignatureSpec("serving_default", "tensorflow/serving/predict", {"x": X}, {"y": Y})
INPUTS = TensorSpec("inputs", "x2:0", "DT_FLOAT", (-1, 1))
OUTPUTS = TensorSpec("outputs", "y3:0", "DT_FLOAT", (-1, 1))
REGRESS = SignatureSpec(
    "regress", "tensorflow/serving/regress", {"inputs": INPUTS}, {"outputs": OUTPUTS}
)
CLASSIFY = SignatureSpec(
    "classify", "tensorflow/serving/classify", {"inputs": EXAMPLES}, {"scores": SCORES}
)
NO_INPUTS = SignatureSpec("constant", "tensorflow/serving/predict", {}, {"y": Y})


@pytest.mark.parametrize("model", ["m", "half_plus_two", "a.b", "with__separator", ".hidden"])
@pytest.mark.parametrize("signature", ["serving_default", ".unbatched", "unbatched", "", "a__b"])
def test_shared_names_never_equal_a_signatures_own(model: str, signature: str) -> None:
    own = triton_model_name(model, signature)
    assert not is_shared(model, own)
    assert shared_model_name(model) != shared_model_name(model, batched=False)
    assert is_shared(model, shared_model_name(model))
    assert is_shared(model, shared_model_name(model, batched=False))


def test_belongs_to() -> None:
    for name in ("m", "m__.unbatched", "m__serving_default", triton_model_name("m", "a__b")):
        assert belongs_to("m", name), name
    for name in ("m__serving_default__parse", "mm", "m_", "other__serving_default", "m2__x"):
        assert not belongs_to("m", name), name
    assert belongs_to("with__sep", shared_model_name("with__sep"))
    assert not belongs_to("with", shared_model_name("with__sep"))


def parsed(config: mc.ModelConfig) -> mc.ModelConfig:
    back = mc.ModelConfig()
    text_format.Parse(text_format.MessageToString(config), back)
    return back


def test_shared_config_prefixes_every_tensor_and_makes_inputs_optional() -> None:
    specs = {tensor_prefix(s.name): s for s in (PREDICT, REGRESS)}
    config = parsed(build_shared_config("m", "m", specs, [1, 2]))
    inputs = {t.name: (list(t.dims), t.optional) for t in config.input}
    assert inputs == {"regress/inputs": ([1], True), "serving_default/x": ([1], True)}
    assert {t.name for t in config.output} == {"regress/outputs", "serving_default/y"}
    assert config.max_batch_size > 0 and config.HasField("dynamic_batching")
    assert config.parameters["signature"].string_value == "regress,serving_default"
    assert list(config.version_policy.specific.versions) == [1, 2]


def test_unbatched_shared_config_keeps_full_shapes() -> None:
    config = parsed(build_shared_config("m__.unbatched", "m", {"classify/": CLASSIFY}, [1]))
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert [(t.name, list(t.dims)) for t in config.input] == [("classify/inputs", [-1])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("classify/scores", [-1, 1])]


def onnx(parse: bool = False) -> SignatureRunner:
    return SignatureRunner(
        ONNXRUNTIME, 0.0, onnx_dir="graph", parse={"input": "x"} if parse else None
    )


def test_placement(tmp_path: Path) -> None:
    signatures = {s.name: s for s in (PREDICT, REGRESS, CLASSIFY, NO_INPUTS)}
    runners = {
        "serving_default": onnx(),
        "regress": SignatureRunner(TENSORFLOW, fallback_reason="parity"),
        "classify": onnx(parse=True),
        "constant": onnx(),
    }
    cpu = SavedModelConverter(tmp_path / "cpu")._placement("m", signatures, runners)
    assert cpu == {
        "serving_default": "m",
        "regress": "m__regress",  # TensorFlow serves it: a stub of its own
        "classify": "m__.unbatched",
        "constant": "m__constant",  # no input tells its requests apart
    }
    gpu = SavedModelConverter(tmp_path / "gpu", flavor="gpu")._placement("m", signatures, runners)
    assert gpu == {name: triton_model_name("m", name) for name in signatures}


def test_routing_table_carries_the_prefix() -> None:
    version = VersionRoute(
        1,
        "AVAILABLE",
        signatures={"serving_default": PREDICT, "regress": REGRESS},
        triton_models={"serving_default": "m", "regress": "m__regress"},
        batched={"serving_default": True, "regress": True},
        prefixes={"serving_default": "serving_default/"},
    )
    table = RoutingTable(3, {"m": ModelRoute("m", {1: version})})
    back = RoutingTable.from_json(json.loads(json.dumps(table.to_json())))
    assert back == table
    shared = back.models["m"].versions[1].target("m", "serving_default")
    own = back.models["m"].versions[1].target("m", "regress")
    assert shared is not None and (shared.triton_model, shared.prefix) == ("m", "serving_default/")
    assert own is not None and (own.triton_model, own.prefix) == ("m__regress", "")
    assert back.models["m"].versions[1].target("m", "missing") is None
