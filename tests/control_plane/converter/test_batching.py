"""TF Serving's BatchingParameters on Triton: the descriptor built from the documented fields, the
text parser's errors, and the mapping onto a signature's ModelConfig (parsed back)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter.batching import (
    TRITON_MAX_BATCH_SIZE,
    BatchingConfig,
    BatchingConfigError,
    BatchingParameters,
    parse_batching_parameters,
)
from control_plane.converter.triton_config import EngineOptions, build_model_config
from tfsgate.core.signatures import SignatureSpec, TensorSpec

SIGNATURE = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    inputs={"x": TensorSpec("x", "x:0", "DT_FLOAT", (-1, 1))},
    outputs={"y": TensorSpec("y", "y:0", "DT_FLOAT", (-1, 1))},
)


def config_for(batching: BatchingConfig) -> mc.ModelConfig:
    config = build_model_config(
        "m__serving_default", "m", SIGNATURE, [1], engine=EngineOptions(batching=batching)
    )
    parsed = mc.ModelConfig()
    text_format.Parse(text_format.MessageToString(config), parsed)
    return parsed


def test_descriptor_has_the_documented_fields() -> None:
    fields = {f.name: f.number for f in BatchingParameters.DESCRIPTOR.fields}
    assert fields == {
        "max_batch_size": 1,
        "batch_timeout_micros": 2,
        "max_enqueued_batches": 3,
        "num_batch_threads": 4,
        "thread_pool_name": 5,
        "allowed_batch_sizes": 6,
        "pad_variable_length_inputs": 7,
        "enable_large_batch_splitting": 8,
        "max_execution_batch_size": 9,
    }
    assert BatchingParameters.DESCRIPTOR.full_name == "tensorflow.serving.BatchingParameters"


def test_tf_servings_own_batching_config(shared_testdata: Path) -> None:
    batching = BatchingConfig.from_flags(True, str(shared_testdata / "batching_config.txt"))
    assert batching == BatchingConfig(
        enabled=True,
        max_batch_size=128,
        batch_timeout_micros=0,
        max_enqueued_batches=1_000_000,
        num_batch_threads=8,
    )
    config = config_for(batching)
    assert config.max_batch_size == TRITON_MAX_BATCH_SIZE
    assert list(config.dynamic_batching.preferred_batch_size) == [128]
    assert config.dynamic_batching.max_queue_delay_microseconds == 0
    # No queue policy: it stalls requests ~500 ms in Triton 2.51 (see batching.py).
    assert not config.dynamic_batching.HasField("default_queue_policy")
    assert config.instance_group[0].count == 8
    assert config.parameters["execution_batch_size"].string_value == "128"
    assert config.parameters["max_request_rows"].string_value == "128"


def test_every_field_maps() -> None:
    text = """
        max_batch_size { value: 64 }
        batch_timeout_micros { value: 2500 }
        max_enqueued_batches { value: 3 }
        num_batch_threads { value: 2 }
        allowed_batch_sizes: 16
        allowed_batch_sizes: 64
        enable_large_batch_splitting { value: true }
        max_execution_batch_size { value: 32 }
    """
    config = config_for(BatchingConfig.from_message(parse_batching_parameters(text)))
    batcher = config.dynamic_batching
    assert list(batcher.preferred_batch_size) == [16, 64]
    assert batcher.max_queue_delay_microseconds == 2500
    assert not batcher.HasField("default_queue_policy")
    assert config.instance_group[0].count == 2
    assert config.parameters["execution_batch_size"].string_value == "32"
    assert config.parameters["large_batch_splitting"].string_value == "true"


def test_without_enable_batching_no_queue_delay_and_no_row_limit() -> None:
    config = config_for(BatchingConfig.from_flags(False, "ignored.txt"))
    assert config.max_batch_size == TRITON_MAX_BATCH_SIZE
    assert list(config.dynamic_batching.preferred_batch_size) == [128]
    assert config.dynamic_batching.max_queue_delay_microseconds == 0
    assert not config.dynamic_batching.HasField("default_queue_policy")
    assert config.parameters["execution_batch_size"].string_value == "0"
    assert "max_request_rows" not in config.parameters


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size: 3", 'Expected "{"'),
        ("bogus { value: 1 }", 'has no field named "bogus"'),
        ("bogus { value: 1 }", "Invalid protobuf file: '<text>'"),
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: 4",
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; "
            "expected 8",
        ),
    ],
)
def test_bad_files_say_why(text: str, message: str) -> None:
    with pytest.raises(BatchingConfigError) as caught:
        BatchingConfig.from_message(parse_batching_parameters(text))
    assert message in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(BatchingConfigError, match="missing.txt; No such file or directory"):
        BatchingConfig.from_flags(True, str(tmp_path / "missing.txt"))


def test_per_model_batching_params_replace_the_servers(tmp_path: Path) -> None:
    """--enable_per_model_batching_parameters: the newest version's batching_params.pbtxt (kept
    beside its runner by the converter) is the model's batching; a model without one is not
    batched (TF Serving's GetPerModelBatchingParams)."""
    from control_plane.converter.writer import SavedModelConverter
    from control_plane.reconciler.configs import signature_configs
    from control_plane.reconciler.settings import ReconcilerSettings

    server = BatchingConfig.from_message(
        parse_batching_parameters("max_batch_size { value: 64 } batch_timeout_micros { value: 9 }")
    )
    settings = ReconcilerSettings(
        max_batch_size=64, engine=EngineOptions(batching=server), per_model_batching=True
    )
    converter = SavedModelConverter(tmp_path / "repository")
    for version in (1, 2):
        (converter.repository / "m__serving_default" / str(version)).mkdir(parents=True)
    own = "max_batch_size { value: 8 } batch_timeout_micros { value: 700 }"
    (converter.repository / "m__serving_default" / "2" / "batching_params.pbtxt").write_text(own)

    def batcher(versions: set[int], per_model: bool = True) -> tuple[list[int], int]:
        chosen = settings if per_model else ReconcilerSettings(engine=settings.engine)
        (config,) = signature_configs(
            chosen, converter, "m__serving_default", "m", SIGNATURE, versions, False
        )
        dynamic = config.dynamic_batching
        return list(dynamic.preferred_batch_size), dynamic.max_queue_delay_microseconds

    assert batcher({1, 2}) == ([8], 700)
    assert batcher({1}) == ([128], 0)  # no file: TF Serving does not batch this model
    assert batcher({1, 2}, per_model=False) == ([64], 9)
