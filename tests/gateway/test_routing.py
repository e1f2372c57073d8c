"""The resolver: versions, labels, traffic weights and latest, as TF Serving resolves them."""

from __future__ import annotations

import pytest

from gateway.routing import named_version, resolve, resolve_version
from gateway.types import ModelRef
from tfsgate.core.routing_table import ModelRoute, RoutingTable, VersionRoute
from tfsgate.core.signatures import SignatureSpec
from tfsgate.core.status import Code, ServingError

PREDICT = SignatureSpec("serving_default", "tensorflow/serving/predict")


def _version(number: int, state: str = "AVAILABLE") -> VersionRoute:
    return VersionRoute(
        number,
        state,
        signatures={"serving_default": PREDICT},
        triton_models={"serving_default": "m__serving_default"},
        batched={"serving_default": True},
    )


def _table(**route: object) -> RoutingTable:
    versions = {1: _version(1), 2: _version(2), 3: _version(3, "LOADING")}
    return RoutingTable(1, {"m": ModelRoute("m", versions, **route)})  # type: ignore[arg-type]


def _code(table: RoutingTable, ref: ModelRef) -> Code:
    with pytest.raises(ServingError) as caught:
        resolve(table, ref)
    return caught.value.code


def test_latest_available_by_default() -> None:
    assert resolve_version(_table(), ModelRef("m")).version == 2


def test_version_and_label() -> None:
    table = _table(labels={"stable": 1, "next": 3})
    assert resolve_version(table, ModelRef("m", version=1)).version == 1
    assert resolve_version(table, ModelRef("m", label="stable")).version == 1
    # A label on a version that is not AVAILABLE resolves, but nothing serves it.
    assert _code(table, ModelRef("m", label="next")) == Code.NOT_FOUND
    assert _code(table, ModelRef("m", label="nope")) == Code.INVALID_ARGUMENT


def test_unknown_model_version_and_signature() -> None:
    assert _code(_table(), ModelRef("x")) == Code.NOT_FOUND
    assert _code(_table(), ModelRef("m", version=9)) == Code.NOT_FOUND
    assert _code(_table(), ModelRef("m", signature="other")) == Code.FAILED_PRECONDITION


def test_traffic_weights_pick_available_versions_only() -> None:
    table = _table(traffic={1: 1.0, 3: 100.0})  # version 3 is LOADING: never picked
    assert {resolve_version(table, ModelRef("m")).version for _ in range(50)} == {1}


def test_target_names_the_triton_model() -> None:
    target = resolve(_table(), ModelRef("m", version=1))
    assert (target.model, target.triton_model, target.batched) == ("m", "m__serving_default", True)


def test_named_version_is_the_status_lookup() -> None:
    route = _table(labels={"next": 3}).models["m"]
    assert named_version(route, ModelRef("m")) is None
    assert named_version(route, ModelRef("m", version=7)) == 7
    assert named_version(route, ModelRef("m", label="next")) == 3
    with pytest.raises(ServingError, match="Unrecognized servable version label: x"):
        named_version(route, ModelRef("m", label="x"))
