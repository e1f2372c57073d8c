"""The routing table: the one place that turns a request's model reference into a Triton target.

The control plane builds a new immutable ``RoutingTable`` after every change and publishes it;
gateways swap the reference atomically and never query SQL per request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from gateway.errors import Code, ServingError
from gateway.types import ModelRef
from tfsgate.signatures import DEFAULT_SIGNATURE, SignatureSpec

AVAILABLE = "AVAILABLE"


@dataclass(frozen=True)
class VersionRoute:
    version: int
    state: str
    reason: str = ""
    signatures: dict[str, SignatureSpec] = field(default_factory=dict)
    triton_models: dict[str, str] = field(default_factory=dict)  # signature -> Triton model
    batched: dict[str, bool] = field(default_factory=dict)  # signature -> max_batch_size > 0

    @property
    def available(self) -> bool:
        return self.state == AVAILABLE


@dataclass(frozen=True)
class ModelRoute:
    name: str
    versions: dict[int, VersionRoute] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    traffic: dict[int, float] = field(default_factory=dict)  # version -> weight, empty = latest

    def latest_available(self) -> VersionRoute | None:
        available = [v for v in self.versions.values() if v.available]
        return max(available, key=lambda v: v.version) if available else None


@dataclass(frozen=True)
class Target:
    """A resolved request: which version and signature, and where Triton serves it."""

    model: str
    version: VersionRoute
    signature: SignatureSpec
    triton_model: str
    batched: bool


@dataclass(frozen=True)
class RoutingTable:
    generation: int = 0
    models: dict[str, ModelRoute] = field(default_factory=dict)

    def model(self, name: str, ref: ModelRef | None = None) -> ModelRoute:
        route = self.models.get(name)
        if route is None:
            described = (ref or ModelRef(name)).describe()
            raise ServingError(Code.NOT_FOUND, f"Servable not found for request: {described}")
        return route

    def resolve_version(self, ref: ModelRef) -> VersionRoute:
        """Version, label, traffic split or latest, as TF Serving resolves them."""
        route = self.model(ref.name, ref)
        if ref.version is not None:
            version = route.versions.get(ref.version)
        elif ref.label is not None:
            if ref.label not in route.labels:
                raise ServingError(
                    Code.INVALID_ARGUMENT, f"Unrecognized servable version label: {ref.label}"
                )
            version = route.versions.get(route.labels[ref.label])
        else:
            version = self._by_traffic(route) or route.latest_available()
        if version is None or not version.available:
            raise ServingError(Code.NOT_FOUND, f"Servable not found for request: {ref.describe()}")
        return version

    @staticmethod
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

    def resolve(self, ref: ModelRef) -> Target:
        version = self.resolve_version(ref)
        name = ref.signature or DEFAULT_SIGNATURE
        signature = version.signatures.get(name)
        triton_model = version.triton_models.get(name)
        if signature is None or triton_model is None:
            raise ServingError(
                Code.FAILED_PRECONDITION,
                f'Serving signature name: "{name}" not found in signature def',
            )
        return Target(ref.name, version, signature, triton_model, version.batched.get(name, False))


class Router:
    """Holds the current table; ``publish`` swaps it in one reference assignment."""

    def __init__(self, table: RoutingTable | None = None) -> None:
        self._table = table or RoutingTable()

    @property
    def table(self) -> RoutingTable:
        return self._table

    def publish(self, table: RoutingTable) -> None:
        self._table = table
