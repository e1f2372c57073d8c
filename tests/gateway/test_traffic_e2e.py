"""Weighted and sticky routing over a real ``tfsgate serve``: a 90/10 split over 2,000 requests,
route keys that stay put and move only ~10 % on 90/10 -> 80/20, labels as traffic targets,
explicit versions honoured, the chosen version and a request id on every answer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import grpc
import httpx
import pytest

from tests.support.admin_http import admin, serve_with_admin
from tests.support.models import model_config, write_models
from tests.support.servers import ServerProcess
from tfsgate.core import protos

pytestmark = pytest.mark.triton


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("traffic")
    base = root / "models" / "hpt"
    # version 1 answers 0.5x + 2, version 2 answers 0.5x + 3
    write_models(
        ("half_plus_two", base / "1", {}),
        ("half_plus_three", base / "2", {}),
    )
    with serve_with_admin(root, model_config(("hpt", base)), "hpt") as (server, api):
        yield server, api


async def _predict_many(
    server: ServerProcess, keys: list[str | None], concurrency: int = 8
) -> list[int]:
    """The version that answered each request (checked against the answer's value)."""
    semaphore = asyncio.Semaphore(concurrency)
    url = f"{server.rest_url}/v1/models/hpt:predict"

    async def one(client: httpx.AsyncClient, key: str | None) -> int:
        headers = {"X-Route-Key": key} if key else {}
        async with semaphore:
            response = await client.post(url, json={"instances": [2.0]}, headers=headers)
        assert response.status_code == 200, response.text
        version = int(response.headers["x-model-version"])
        assert response.json()["predictions"][0] == {1: 3.0, 2: 4.0}[version]
        return version

    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(one(client, k) for k in keys)))


def versions_for(server: ServerProcess, keys: list[str | None]) -> list[int]:
    return asyncio.run(_predict_many(server, keys))


def test_90_10_split_over_2000_requests(served: tuple[ServerProcess, str]) -> None:
    server, api = served
    admin("PUT", f"{api}/models/hpt/traffic", {"weights": {"1": 90, "2": 10}})
    counts = Counter(versions_for(server, [None] * 2000))
    share = counts[2] / 2000
    print(f"90/10 split over 2000 requests: version 1 {counts[1]}, version 2 {counts[2]}")
    assert abs(share - 0.10) <= 0.03, counts


def test_route_keys_stick_and_move_about_10_percent(served: tuple[ServerProcess, str]) -> None:
    server, api = served
    keys: list[str | None] = [f"user-{i}" for i in range(1000)]
    admin("PUT", f"{api}/models/hpt/traffic", {"weights": {"1": 90, "2": 10}})
    first = versions_for(server, keys)
    assert versions_for(server, keys) == first  # same weights: every key stays put
    admin("PUT", f"{api}/models/hpt/traffic", {"weights": {"1": 80, "2": 20}})
    after = versions_for(server, keys)
    moved = [(a, b) for a, b in zip(first, after, strict=True) if a != b]
    print(f"90/10 -> 80/20: {len(moved)} of {len(keys)} keys moved")
    assert abs(len(moved) / len(keys) - 0.10) <= 0.03
    assert set(moved) == {(1, 2)}  # only keys joining the grown share move


def test_grpc_route_key_and_effective_model_spec(served: tuple[ServerProcess, str]) -> None:
    server, api = served
    admin("PUT", f"{api}/models/hpt/traffic", {"weights": {"1": 50, "2": 50}})
    rest = versions_for(server, [f"k{i}" for i in range(40)])
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = "hpt"
    request.inputs["x"].CopyFrom(_tensor([2.0]))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for i, version in enumerate(rest):
            response, call = stub.Predict.with_call(
                request,
                metadata=(("x-route-key", f"k{i}"), ("x-request-id", f"id-{i}")),
                timeout=30,
            )
            assert response.model_spec.version.value == version  # same key, same version
            assert dict(call.trailing_metadata())["x-request-id"] == f"id-{i}"
        _, call = stub.Predict.with_call(request, timeout=30)
        assert dict(call.trailing_metadata())["x-request-id"]  # generated when not sent


def test_labels_as_targets_and_explicit_versions_win(served: tuple[ServerProcess, str]) -> None:
    server, api = served
    admin("POST", f"{api}/models/hpt/promote", {"version": 1})
    admin("PUT", f"{api}/models/hpt/labels/canary", {"version": 2})
    admin("PUT", f"{api}/models/hpt/traffic", {"weights": {"stable": 0, "canary": 100}})
    assert set(versions_for(server, [None] * 20)) == {2}
    assert admin("GET", f"{api}/models/hpt/traffic").json()["weights"] == {
        "stable": 0.0,
        "canary": 100.0,
    }
    for path, value in (("hpt/versions/1", 3.0), ("hpt/labels/stable", 3.0)):
        response = httpx.post(
            f"{server.rest_url}/v1/models/{path}:predict", json={"instances": [2.0]}, timeout=30
        )
        assert response.json()["predictions"] == [value]
        assert response.headers["x-model-version"] == "1"
    admin("PUT", f"{api}/models/hpt/traffic", {"weights": {}})


def test_request_ids_echoed_or_made(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    url = f"{server.rest_url}/v1/models/hpt:predict"
    given = httpx.post(url, json={"instances": [1.0]}, headers={"X-Request-Id": "abc-1"})
    assert given.headers["x-request-id"] == "abc-1"
    made = {httpx.post(url, json={"instances": [1.0]}).headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3
    error = httpx.post(f"{server.rest_url}/v1/models/nope:predict", json={"instances": [1.0]})
    assert error.status_code == 404 and error.headers["x-request-id"]


def _tensor(values: list[float]) -> object:
    tensor = protos.tensor_pb2.TensorProto(dtype=protos.types_pb2.DT_FLOAT)
    tensor.tensor_shape.dim.add(size=len(values))
    tensor.float_val.extend(values)
    return tensor
