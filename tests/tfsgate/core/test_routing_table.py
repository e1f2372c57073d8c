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
