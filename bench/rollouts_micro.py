"""Per-request cost of the rollout additions on the hot path, in microseconds (timeit).

Run: ``flock /work/coord/heavy.lock .venv/bin/python bench/rollouts_micro.py``. Measures what a
request pays with logging and shadow off: the request id, the header scan, and resolving a
target (latest version; a 90/10 split without a key; with a route key).
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gateway.request_ids import accept_request_id  # noqa: E402
from gateway.rest import _scan_headers  # noqa: E402
from gateway.routing import Router  # noqa: E402
from gateway.types import ModelRef  # noqa: E402
from tfsgate.core.naming import shared_model_name, tensor_prefix  # noqa: E402
from tfsgate.core.routing_table import ModelRoute, RoutingTable, VersionRoute  # noqa: E402
from tfsgate.core.signatures import SignatureSpec, TensorSpec  # noqa: E402

SIGNATURE = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    {"x": TensorSpec("x", "x:0", "DT_FLOAT", (-1, 1))},
    {"y": TensorSpec("y", "y:0", "DT_FLOAT", (-1, 1))},
)


def version(number: int) -> VersionRoute:
    """As the control plane publishes an ONNX-served signature: in the model's shared Triton
    model, its tensors prefixed (tfsgate/core/naming.py)."""
    return VersionRoute(
        number,
        "AVAILABLE",
        signatures={"serving_default": SIGNATURE},
        triton_models={"serving_default": shared_model_name("hpt")},
        batched={"serving_default": True},
        prefixes={"serving_default": tensor_prefix("serving_default")},
    )


def table(traffic: dict[int, float]) -> RoutingTable:
    route = ModelRoute("hpt", {1: version(1), 2: version(2)}, {"stable": 1}, traffic)
    return RoutingTable(1, {"hpt": route})


def per_call_us(statement: object, number: int = 200_000) -> float:
    best = min(timeit.repeat(statement, number=number, repeat=5))  # type: ignore[arg-type]
    return best / number * 1e6


def main() -> None:
    scope = {
        "headers": [
            (b"host", b"127.0.0.1:8501"),
            (b"user-agent", b"wrk"),
            (b"content-type", b"application/json"),
            (b"content-length", b"24"),
        ]
    }
    plain, split = Router(table({})), Router(table({1: 90, 2: 10}))
    ref, keyed = ModelRef("hpt"), ModelRef("hpt", route_key="user-1234")
    rows = [
        ("new request id", lambda: accept_request_id("")),
        ("echoed request id", lambda: accept_request_id("client-id-42")),
        ("header scan (4 headers)", lambda: _scan_headers(scope["headers"])),
        ("resolve: latest", lambda: plain.resolve(ref)),
        ("resolve: 90/10 split, no key", lambda: split.resolve(ref)),
        ("resolve: 90/10 split, route key", lambda: split.resolve(keyed)),
    ]
    for name, call in rows:
        print(f"{name:34s} {per_call_us(call):6.2f} us")


if __name__ == "__main__":
    main()
