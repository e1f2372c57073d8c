"""Signatures served by the TensorFlow runner in a real tritonserver (the model's runner setting
``tensorflow``): numpy-only stubs, one TensorFlow worker for every model and version of the Triton
server, TF errors as Triton error codes, worker lifetime tied to its stubs and Triton."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from control_plane.converter import triton_config
from control_plane.converter.writer import SavedModelConverter
from control_plane.triton.embedded import EmbeddedTriton
from control_plane.triton.repository import TritonRepositoryClient
from tests.support.procs import Proc, open_sockets, processes, stubs_of
from tests.support.tf_example import example
from tests.support.waiting import wait_until

pytestmark = pytest.mark.triton  # starts tritonserver

MiB = 1 << 20


def workers_of(triton: EmbeddedTriton | int | None) -> list[Proc]:
    """TensorFlow workers in the process group of ``triton`` (its pid)."""
    group = triton.pid if isinstance(triton, EmbeddedTriton) else triton
    return [p for p in processes() if "tf_worker.py" in p.cmdline and p.pgid == group]


@dataclass
class Served:
    triton: EmbeddedTriton
    repository: Path
    models: dict[str, list[str]]  # tf model -> Triton model names
    configs: dict[str, object]

    @property
    def url(self) -> str:
        assert self.triton.endpoints is not None
        return self.triton.endpoints.grpc_url

    def repository_call(self, method: str, *args: object) -> object:
        async def call() -> object:
            client = TritonRepositoryClient(self.url)
            try:
                return await getattr(client, method)(*args)
            finally:
                await client.close()

        return asyncio.run(call())


def serve(tmp_path: Path, saved_models: dict[str, Path], names: list[str]) -> Served:
    repository = tmp_path / "repository"
    converter = SavedModelConverter(repository)
    models: dict[str, list[str]] = {}
    configs: dict[str, object] = {}
    for name in names:
        source = saved_models[name]
        converted = converter.convert(name, int(source.name), source, runner="tensorflow")
        models[name] = sorted(converted.triton_models.values())
        for signature, triton_name in converted.triton_models.items():
            config = triton_config.build_model_config(
                triton_name, name, converted.signatures[signature], [converted.version]
            )
            converter.write_config(config)
            configs[triton_name] = config
    triton = EmbeddedTriton(repository, tmp_path / "home")
    triton.start()
    served = Served(triton, repository.resolve(), models, configs)
    try:
        asyncio.run(triton.wait_ready())
        for triton_name, config in configs.items():
            served.repository_call("load", triton_name, config)
    except BaseException:
        triton.stop()
        raise
    return served


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, saved_models: dict[str, Path]
) -> Iterator[Served]:
    served = serve(
        tmp_path_factory.mktemp("served"),
        saved_models,
        ["half_plus_two", "multi_io", "unknown_rank"],
    )
    yield served
    served.triton.stop()


@pytest.fixture
def client(served: Served) -> Iterator[triton_grpc.InferenceServerClient]:
    with triton_grpc.InferenceServerClient(served.url) as client:
        yield client


def infer(
    client: triton_grpc.InferenceServerClient,
    model: str,
    inputs: dict[str, np.ndarray],
    version: str = "",
) -> dict[str, np.ndarray]:
    types = {np.dtype(np.float32): "FP32", np.dtype(object): "BYTES"}
    tensors = []
    for name, value in inputs.items():
        tensor = triton_grpc.InferInput(name, list(value.shape), types[value.dtype])
        tensor.set_data_from_numpy(value)
        tensors.append(tensor)
    result = client.infer(model, tensors, model_version=version)
    response = result.get_response()
    return {o.name: result.as_numpy(o.name) for o in response.outputs}


def test_every_signature_loads(served: Served) -> None:
    ready = {e.name for e in served.repository_call("index") if e.state == "READY"}  # type: ignore[attr-defined]
    assert ready == set(served.configs)
    assert len(served.models["half_plus_two"]) == 5


def test_serving_default(client: triton_grpc.InferenceServerClient) -> None:
    x = np.array([[1.0], [2.0], [5.0]], dtype=np.float32)
    out = infer(client, "half_plus_two__serving_default", {"x": x}, "123")
    np.testing.assert_array_equal(out["y"], [[2.5], [3.0], [4.5]])


def test_regress_over_tf_example(client: triton_grpc.InferenceServerClient) -> None:
    inputs = np.array([example(x=2.0)], dtype=object)
    out = infer(client, "half_plus_two__regress_x_to_y", {"inputs": inputs})
    np.testing.assert_array_equal(out["outputs"], [[3.0]])


def test_other_signatures_share_the_worker(client: triton_grpc.InferenceServerClient) -> None:
    inputs = np.array([example(x=2.0), example(x=4.0)], dtype=object)
    assert infer(client, "half_plus_two__classify_x_to_y", {"inputs": inputs})[
        "scores"
    ].tolist() == [
        [3.0],
        [4.0],
    ]
    assert infer(client, "half_plus_two__regress_x_to_y2", {"inputs": inputs})[
        "outputs"
    ].tolist() == [
        [4.0],
        [5.0],
    ]
    x2 = np.array([[1.0]], dtype=np.float32)
    assert infer(client, "half_plus_two__regress_x2_to_y3", {"inputs": x2})["outputs"].tolist() == [
        [3.5]
    ]


def test_multi_io(client: triton_grpc.InferenceServerClient) -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    b = np.array([[10.0, 20.0], [30.0, 40.0]], dtype=np.float32)
    # string[-1] and int32[-1] travel as [N, 1] (config dims [1], reshape []).
    tag = np.array([[b"abc"], ["h\u00e9".encode()]], dtype=object)
    out = infer(client, "multi_io__serving_default", {"a": a, "b": b, "tag": tag})
    np.testing.assert_array_equal(out["sum"], a + b)
    assert out["tag_length"].dtype == np.int32
    np.testing.assert_array_equal(out["tag_length"], [[3], [3]])


def test_unknown_rank_output_keeps_its_runtime_shape(
    served: Served, client: triton_grpc.InferenceServerClient
) -> None:
    """Config dims [-1] (unknown rank) and a [N, 1] answer: Triton passes it through as is."""
    config = served.configs["unknown_rank__serving_default"]
    assert list(config.output[0].dims) == [-1]  # type: ignore[attr-defined]
    inputs = np.array([example(x=2.0), example(x=6.0)], dtype=object)
    out = infer(client, "unknown_rank__serving_default", {"inputs": inputs})
    assert out["scores"].shape == (2, 1)
    np.testing.assert_array_equal(out["scores"], [[3.0], [5.0]])


def test_tensorflow_invalid_argument_is_triton_invalid_arg(
    client: triton_grpc.InferenceServerClient,
) -> None:
    inputs = np.array([b"not a tf.Example"], dtype=object)
    with pytest.raises(InferenceServerException) as caught:
        infer(client, "half_plus_two__regress_x_to_y", {"inputs": inputs})
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "parse" in caught.value.message().lower()
    # The worker survives a failed call.
    x = np.array([[1.0]], dtype=np.float32)
    assert infer(client, "half_plus_two__serving_default", {"x": x})["y"].tolist() == [[2.5]]


def test_concurrent_requests_are_batched_and_split_back(served: Served) -> None:
    async def run() -> list[tuple[float, list[list[float]]]]:
        import tritonclient.grpc.aio as triton_aio

        async with triton_aio.InferenceServerClient(served.url) as client:

            async def one(value: float) -> tuple[float, list[list[float]]]:
                x = np.full((2, 1), value, dtype=np.float32)
                tensor = triton_aio.InferInput("x", [2, 1], "FP32")
                tensor.set_data_from_numpy(x)
                result = await client.infer("half_plus_two__serving_default", [tensor])
                return value, result.as_numpy("y").tolist()

            return await asyncio.gather(*(one(float(v)) for v in range(64)))

    for value, y in asyncio.run(run()):
        assert y == [[value * 0.5 + 2.0]] * 2


def test_one_tensorflow_worker_for_every_model_and_small_stubs(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three models in one TensorFlow process, as TF Serving's single process holds them."""
    workers = workers_of(served.triton)
    assert len(workers) == 1, workers
    stubs = stubs_of(served.repository)
    assert len(stubs) == len(served.configs)
    hpt_worker = workers[0]
    # The worker lives in Triton's process group (stopping the group stops it) and watches
    # Triton itself, the stubs' parent, for a Triton that is not a group leader.
    assert hpt_worker.pgid == served.triton.pid
    assert f"--owner_pid {served.triton.pid} " in hpt_worker.cmdline
    for stub in stubs:
        assert stub.rss < 150 * MiB, stub
    assert hpt_worker.rss > 200 * MiB  # TensorFlow is here, not in the stubs
    with capsys.disabled():
        sizes = ", ".join(f"{s.rss / MiB:.0f}" for s in stubs)
        total = sum(s.rss for s in stubs) / MiB
        print(
            f"\n[memory] stub RSS MiB: {sizes} (total {total:.0f} for {len(stubs)} stubs); "
            f"one worker for 3 models RSS {hpt_worker.rss / MiB:.0f} MiB"
        )


def test_worker_exits_after_unload_and_returns_on_load(
    tmp_path: Path, saved_models: dict[str, Path]
) -> None:
    served = serve(tmp_path, saved_models, ["half_plus_two"])
    group = served.triton.pid
    try:
        (worker,) = workers_of(group)
        held = open_sockets(worker.pid)
        names = served.models["half_plus_two"]
        served.repository_call("unload", names[0])
        # The worker has seen that stub go; the other signatures' stubs still hold it, so its
        # idle clock stays at zero (test_idle_clock_runs_only_with_no_stub_connected).
        assert wait_until(lambda: open_sockets(worker.pid) == held - 1, 30.0)
        assert [w.pid for w in workers_of(group)] == [worker.pid]
        for name in names[1:]:
            served.repository_call("unload", name)
        assert wait_until(lambda: not workers_of(group), 10.0)

        served.repository_call("load", "half_plus_two__serving_default")
        with triton_grpc.InferenceServerClient(served.url) as client:
            x = np.array([[2.0]], dtype=np.float32)
            assert infer(client, "half_plus_two__serving_default", {"x": x})["y"].tolist() == [
                [3.0]
            ]
        assert len(workers_of(group)) == 1
    finally:
        served.triton.stop()
    assert wait_until(lambda: not workers_of(group) and not stubs_of(served.repository), 10)
