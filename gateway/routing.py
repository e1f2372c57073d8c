"""The resolver: the one place that turns a request's model reference into a Triton target.

Versions, labels, traffic weights and "latest" are resolved here, against the routing table the
control plane publishes (``tfsgate.core.routing_table``), as TF Serving resolves them. ``Router``
holds the current table; publishing swaps it in one reference assignment.
"""

from __future__ import annotations

import random

from gateway.types import ModelRef
from tfsgate.core.routing_table import ModelRoute, RoutingTable, Target, VersionRoute
from tfsgate.core.signatures import DEFAULT_SIGNATURE
from tfsgate.core.status import Code, ServingError


def model_route(table: RoutingTable, ref: ModelRef) -> ModelRoute:
    route = table.models.get(ref.name)
    if route is None:
        raise ServingError(Code.NOT_FOUND, f"Servable not found for request: {ref.describe()}")
    return route


def named_version(route: ModelRoute, ref: ModelRef) -> int | None:
    """The version a request names by number or label; None when it names neither.

    An unknown label is INVALID_ARGUMENT, as in TF Serving (``Unrecognized servable version
    label``); whether the version exists is the caller's question.
    """
    if ref.version is not None:
        return ref.version
    if ref.label is None:
        return None
    if ref.label not in route.labels:
        raise ServingError(
            Code.INVALID_ARGUMENT, f"Unrecognized servable version label: {ref.label}"
        )
    return route.labels[ref.label]


def resolve_version(table: RoutingTable, ref: ModelRef) -> VersionRoute:
    """Version, label, traffic split or latest available."""
    route = model_route(table, ref)
    number = named_version(route, ref)
    if number is not None:
        version = route.versions.get(number)
    else:
        version = _by_traffic(route) or _latest_available(route)
    if version is None or not version.available:
        raise ServingError(Code.NOT_FOUND, f"Servable not found for request: {ref.describe()}")
    return version


def resolve(table: RoutingTable, ref: ModelRef) -> Target:
    """The version as ``resolve_version`` picks it, then the signature and its Triton model."""
    version = resolve_version(table, ref)
    name = ref.signature or DEFAULT_SIGNATURE
    signature = version.signatures.get(name)
    triton_model = version.triton_models.get(name)
    if signature is None or triton_model is None:
        raise ServingError(
            Code.FAILED_PRECONDITION,
            f'Serving signature name: "{name}" not found in signature def',
        )
    return Target(ref.name, version, signature, triton_model, version.batched.get(name, False))


def _latest_available(route: ModelRoute) -> VersionRoute | None:
    available = [v for v in route.versions.values() if v.available]
    return max(available, key=lambda v: v.version) if available else None


def _by_traffic(route: ModelRoute) -> VersionRoute | None:
    weighted = [
        (route.versions[v], w)
        for v, w in route.traffic.items()
        if w > 0 and v in route.versions and route.versions[v].available
    ]
    if not weighted:
        return None
    versions, weights = zip(*weighted, strict=True)
    return random.choices(versions, weights=weights)[0]


class Router:
    """Holds the current table; ``publish`` swaps it in one reference assignment."""

    def __init__(self, table: RoutingTable | None = None) -> None:
        self._table = table or RoutingTable()

    @property
    def table(self) -> RoutingTable:
        return self._table

    def publish(self, table: RoutingTable) -> None:
        self._table = table
