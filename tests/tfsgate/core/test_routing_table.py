"""The routing table survives JSON (how separate gateway processes will receive it)."""

from __future__ import annotations

import json

from tfsgate.core.routing_table import ModelRoute, RoutingTable, VersionRoute
from tfsgate.core.signatures import SignatureSpec, TensorSpec


def _table() -> RoutingTable:
    x = TensorSpec("x", "x:0", "DT_FLOAT", (-1, 3))
    y = TensorSpec("y", "y:0", "DT_FLOAT", (-1,))
    scalar = TensorSpec("s", "s:0", "DT_STRING", ())
    unknown = TensorSpec("u", "u:0", "DT_INT64", None)
    predict = SignatureSpec("serving_default", "tensorflow/serving/predict", {"x": x}, {"y": y})
    other = SignatureSpec("other", "", {"s": scalar}, {"u": unknown})
    v1 = VersionRoute(
        1,
        "AVAILABLE",
        signatures={"serving_default": predict, "other": other},
        triton_models={"serving_default": "m__serving_default", "other": "m__other"},
        batched={"serving_default": True, "other": False},
    )
    v2 = VersionRoute(2, "FAILED", reason="bad graph")
    model = ModelRoute("m", {1: v1, 2: v2}, labels={"stable": 1}, traffic={1: 0.9, 2: 0.1})
    return RoutingTable(7, {"m": model, "empty": ModelRoute("empty")})


def test_round_trip_through_json_text() -> None:
    table = _table()
    text = json.dumps(table.to_json())
    assert RoutingTable.from_json(json.loads(text)) == table


def test_empty_table() -> None:
    assert RoutingTable.from_json(RoutingTable().to_json()) == RoutingTable()


def test_a_version_makes_each_target_once_and_a_replaced_version_anew() -> None:
    """Targets are made once per (model, signature) of an immutable version, with what the data
    plane derives from them; a version made by ``dataclasses.replace`` starts without them."""
    from dataclasses import replace

    v1 = _table().models["m"].versions[1]
    target = v1.target("m", "serving_default")
    assert target is not None and v1.target("m", "serving_default") is target
    assert v1.target("m", "missing") is None
    # y is [-1] in a batching model: it travels as [batch, 1]; x is [-1, 3]: as it is.
    assert target.all_outputs == (("y", "y", True),)
    assert target.unit_inputs == frozenset()
    other = v1.target("m", "other")
    assert other is not None and other.unit_inputs == {"s"}  # a scalar travels as [1]
    shared = replace(v1, prefixes={"serving_default": "sig0__"})
    moved = shared.target("m", "serving_default")
    assert moved is not None and moved is not target and moved.version is shared
    assert moved.all_outputs == (("y", "sig0__y", True),)
    assert moved.outputs_of(["y"]) == (("y", "sig0__y", True),)
    assert shared == replace(v1, prefixes={"serving_default": "sig0__"})  # the cache is no field
