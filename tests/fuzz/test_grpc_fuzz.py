"""10,000 generated and mutated gRPC requests against a real ``tfsgate serve``.

PredictRequest, ClassificationRequest, RegressionRequest, MultiInferenceRequest and
ReloadConfigRequest: made from random parts (names, versions, labels, dtypes, shapes up to 2^40 x
2^30, values, tf.Examples, configs), or valid requests with random bytes changed (kept only when the
bytes still parse: a message that does not parse is gRPC's own INTERNAL in TF Serving too). No
answer may be INTERNAL or UNKNOWN, and the server still answers correctly afterwards.

Seeded (``TFSGATE_FUZZ_SEED``) so a failure can be replayed; bounded in count and time.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.servers import ServerProcess, start_server
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver

MODEL = "half_plus_two"
REQUESTS = 10_000
CONCURRENCY = 32
TIME_LIMIT_SECONDS = 240.0
SEED = int(os.environ.get("TFSGATE_FUZZ_SEED", "20240612"))
BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

SERVICE = "/tensorflow.serving.PredictionService/"
MODEL_SERVICE = "/tensorflow.serving.ModelService/"
SIGNATURES = [
    "",
    "serving_default",
    "classify_x_to_y",
    "regress_x_to_y",
    "regress_x_to_y2",
    "regress_x2_to_y3",
    "nope",
]
METHODS = [
    "tensorflow/serving/classify",
    "tensorflow/serving/regress",
    "tensorflow/serving/predict",
    "",
    "x",
]
BIG_DIMS = [0, 1, 2, 3, -1, -7, 2**30, 2**31, 2**40, 2**62, 2**63 - 1]


@pytest.fixture(scope="module")
def fuzz_server(half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("grpc-fuzz")
    args = [f"--model_name={MODEL}", f"--model_base_path={half_plus_two}"]
    with start_server(home, args) as server:
        yield server


# -- generation ----------------------------------------------------------------------------------


def _text(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.4:
        return rng.choice(["x", "x2", "y", "inputs", "scores", "outputs", "classes", ""])
    length = rng.randint(1, 12)
    return "".join(rng.choice("abcxyz_019/:.%é\x00") for _ in range(length))


def _model_spec(rng: random.Random, spec: Any) -> None:
    spec.name = MODEL if rng.random() < 0.85 else _text(rng)
    roll = rng.random()
    if roll < 0.2:
        spec.version.value = rng.choice([123, 0, -1, 1, 2**62])
    elif roll < 0.3:
        spec.version_label = _text(rng)
    elif roll < 0.35:
        spec.version.value = 123
        spec.version_label = "stable"
    spec.signature_name = rng.choice(SIGNATURES) if rng.random() < 0.9 else _text(rng)


def _tensor(rng: random.Random, tensor: Any) -> None:
    tensor.dtype = rng.choice(
        [1, 1, 1, 2, 3, 7, 9, 10, 14, 19, 0, 20, 21, 23, 100]  # DT_* incl. resource/variant/bad
    )
    rank = rng.choice([0, 1, 1, 2, 2, 3, 5])
    for _ in range(rank):
        tensor.tensor_shape.dim.add(
            size=rng.choice(BIG_DIMS) if rng.random() < 0.25 else rng.randint(0, 4)
        )
    if rng.random() < 0.05:
        tensor.tensor_shape.unknown_rank = True
    field = rng.random()
    count = rng.randint(0, 6)
    if field < 0.35:
        tensor.float_val.extend(rng.uniform(-1e6, 1e6) for _ in range(count))
    elif field < 0.5:
        tensor.int_val.extend(rng.randint(-(2**31), 2**31 - 1) for _ in range(count))
    elif field < 0.6:
        tensor.int64_val.extend(rng.randint(-(2**63), 2**63 - 1) for _ in range(count))
    elif field < 0.7:
        tensor.string_val.extend(rng.randbytes(rng.randint(0, 8)) for _ in range(count))
    elif field < 0.8:
        tensor.tensor_content = rng.randbytes(rng.choice([0, 1, 3, 4, 8, 12, 16, 64]))
    elif field < 0.85:
        tensor.half_val.extend(rng.randint(0, 2**16 + 5) for _ in range(count))
    elif field < 0.9:
        tensor.bool_val.extend(rng.random() < 0.5 for _ in range(count))
    elif field < 0.95:
        tensor.double_val.extend(
            rng.choice([float("nan"), float("inf"), 1.5]) for _ in range(count)
        )


def predict_request(rng: random.Random) -> Any:
    request = protos.predict_pb2.PredictRequest()
    _model_spec(rng, request.model_spec)
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        _tensor(rng, request.inputs[_text(rng) if rng.random() < 0.3 else "x"])
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        request.output_filter.append(rng.choice(["y", "y", _text(rng)]))
    return request


def _example(rng: random.Random, example: Any) -> None:
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        feature = example.features.feature[rng.choice(["x", "x", "x2", _text(rng)])]
        kind = rng.random()
        count = rng.choice([0, 1, 1, 1, 2, 5])
        if kind < 0.6:
            feature.float_list.value.extend(rng.uniform(-10, 10) for _ in range(count))
        elif kind < 0.8:
            feature.int64_list.value.extend(rng.randint(-(2**63), 2**63 - 1) for _ in range(count))
        elif kind < 0.95:
            feature.bytes_list.value.extend(rng.randbytes(3) for _ in range(count))


def _input(rng: random.Random, model_input: Any) -> None:
    roll = rng.random()
    if roll < 0.6:
        for _ in range(rng.choice([0, 1, 1, 2, 4])):
            _example(rng, model_input.example_list.examples.add())
    elif roll < 0.95:
        with_context = model_input.example_list_with_context
        _example(rng, with_context.context)
        for _ in range(rng.choice([0, 1, 2])):
            _example(rng, with_context.examples.add())


def classification_request(rng: random.Random) -> Any:
    request = protos.classification_pb2.ClassificationRequest()
    _model_spec(rng, request.model_spec)
    _input(rng, request.input)
    return request


def regression_request(rng: random.Random) -> Any:
    request = protos.regression_pb2.RegressionRequest()
    _model_spec(rng, request.model_spec)
    _input(rng, request.input)
    return request


def multi_inference_request(rng: random.Random) -> Any:
    request = protos.inference_pb2.MultiInferenceRequest()
    for _ in range(rng.choice([0, 1, 2, 2, 3])):
        task = request.tasks.add()
        _model_spec(rng, task.model_spec)
        task.method_name = rng.choice(METHODS)
    _input(rng, request.input)
    return request


def reload_request(rng: random.Random) -> Any:
    """Configs that never name an existing directory: a reload must not unload the model."""
    request = protos.model_management_pb2.ReloadConfigRequest()
    roll = rng.random()
    if roll < 0.1:
        return request  # no config at all
    if roll < 0.15:
        request.config.custom_model_config.type_url = _text(rng)
        return request
    configs = request.config.model_config_list.config
    # An empty list is a valid reload that unloads everything; the test restores the model.
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        config = configs.add()
        config.name = rng.choice([MODEL, _text(rng), ""])
        config.base_path = rng.choice(
            [
                "",
                "/nonexistent/fuzz/" + _text(rng),
                "relative-" + _text(rng) + "-nope",
                "gs://bucket/" + _text(rng),
                "file:///nonexistent/" + _text(rng),
            ]
        )
        config.model_platform = rng.choice(["tensorflow", "tensorflow", "", "onnx", _text(rng)])
        if rng.random() < 0.2:
            config.model_type = rng.choice([0, 1, 2, 7])
        policy = rng.random()
        if policy < 0.2:
            config.model_version_policy.latest.num_versions = rng.choice([0, 1, 3, 2**32 - 1])
        elif policy < 0.4:
            config.model_version_policy.specific.versions.extend(
                rng.choice([-1, 0, 1, 123, 2**62]) for _ in range(rng.randint(0, 3))
            )
        elif policy < 0.5:
            config.model_version_policy.all.SetInParent()
        for _ in range(rng.choice([0, 0, 1, 2])):
            config.version_labels[_text(rng)] = rng.choice([-1, 0, 123, 2**62])
    return request


# (method path, generator, share of the requests)
KINDS: list[tuple[str, Callable[[random.Random], Any], float]] = [
    (SERVICE + "Predict", predict_request, 0.45),
    (SERVICE + "Classify", classification_request, 0.15),
    (SERVICE + "Regress", regression_request, 0.1),
    (SERVICE + "MultiInference", multi_inference_request, 0.2),
    (MODEL_SERVICE + "HandleReloadConfigRequest", reload_request, 0.1),
]


def mutate(rng: random.Random, message: Any) -> bytes | None:
    """The message's bytes with a few random changes, or None when they no longer parse."""
    data = bytearray(message.SerializeToString())
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if not data or op < 0.2:
            data[rng.randint(0, len(data)) : rng.randint(0, len(data))] = rng.randbytes(
                rng.randint(1, 6)
            )
        elif op < 0.7:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op < 0.85:
            start = rng.randrange(len(data))
            del data[start : start + rng.randint(1, 8)]
        else:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    try:
        type(message).FromString(bytes(data))
    except Exception:  # noqa: BLE001 - protobuf raises DecodeError and friends
        return None
    return bytes(data)


def requests(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    """``count`` requests; reloads last, since a valid one may replace the served model set."""
    weights = [k[2] for k in KINDS]
    made: list[tuple[str, bytes]] = []
    while len(made) < count:
        method, generate, _ = rng.choices(KINDS, weights)[0]
        message = generate(rng)
        payload = mutate(rng, message) if rng.random() < 0.4 else message.SerializeToString()
        if payload is not None:
            made.append((method, payload))
    return sorted(made, key=lambda item: item[0].startswith(MODEL_SERVICE))


# -- the run -------------------------------------------------------------------------------------


async def _fire(target: str, count: int) -> tuple[collections.Counter[str], list[str]]:
    rng = random.Random(SEED)
    codes: collections.Counter[str] = collections.Counter()
    bad: list[str] = []
    queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(maxsize=CONCURRENCY * 2)
    started = time.monotonic()
    async with grpc.aio.insecure_channel(target) as channel:
        calls = {
            k[0]: channel.unary_unary(k[0], request_serializer=None, response_deserializer=None)
            for k in KINDS
        }

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                method, payload = item
                try:
                    await calls[method](payload, timeout=30)
                    codes["OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    codes[exc.code().name] += 1
                    if exc.code() in BAD:
                        bad.append(f"{method} {payload!r}: {exc.code().name} {exc.details()}")

        workers = [asyncio.ensure_future(worker()) for _ in range(CONCURRENCY)]
        for item in requests(rng, count):
            await queue.put(item)
            assert time.monotonic() - started < TIME_LIMIT_SECONDS, "fuzz exceeded its time"
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    return codes, bad


def _predict_ok(server: ServerProcess) -> float:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    tensor = request.inputs["x"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.append(2.0)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return float(stub.Predict(request, timeout=30).outputs["y"].float_val[0])


def _restore(server: ServerProcess, base_path: Path) -> None:
    """A valid reload brings the model back, whatever the fuzz left configured."""
    request = protos.model_management_pb2.ReloadConfigRequest()
    config = request.config.model_config_list.config.add()
    config.name, config.base_path, config.model_platform = MODEL, str(base_path), "tensorflow"
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.model_service_pb2_grpc.ModelServiceStub(channel)
        assert stub.HandleReloadConfigRequest(request, timeout=120).status.error_code == 0


def test_reload_without_a_config_takes_no_action(fuzz_server: ServerProcess) -> None:
    """ServerCore::ReloadConfig: "Taking no action for empty config." (it once unloaded all)."""
    request = protos.model_management_pb2.ReloadConfigRequest()
    with grpc.insecure_channel(fuzz_server.grpc_target) as channel:
        stub = protos.model_service_pb2_grpc.ModelServiceStub(channel)
        assert stub.HandleReloadConfigRequest(request, timeout=60).status.error_code == 0
    assert _predict_ok(fuzz_server) == 3.0


def test_fuzzed_grpc_requests_never_answer_internal(
    fuzz_server: ServerProcess, half_plus_two: Path
) -> None:
    codes, bad = asyncio.run(_fire(fuzz_server.grpc_target, REQUESTS))
    print(f"seed {SEED}: {dict(codes)}")
    assert sum(codes.values()) == REQUESTS
    assert not bad, f"{len(bad)} INTERNAL/UNKNOWN answers (seed {SEED}), e.g.:\n" + "\n".join(
        bad[:10]
    )
    # The mix reached the model, not only the validators.
    assert codes["OK"] > 200, codes
    assert codes["INVALID_ARGUMENT"] > 1000, codes
    assert fuzz_server.process.poll() is None
    _restore(fuzz_server, half_plus_two)
    assert _predict_ok(fuzz_server) == 3.0
