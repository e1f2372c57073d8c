"""The resolver: the one place that turns a request's model reference into a Triton target.

Versions, labels, traffic weights and "latest" are resolved here, against the routing table the
control plane publishes (``tfsgate.core.routing_table``), as TF Serving resolves them. An
explicit version or label always wins; weights apply to requests that name neither, sticky by
the request's route key (``gateway.traffic_split``). ``Router`` holds the current table with its
precomputed splits; publishing swaps both in one reference assignment, so a request in flight
keeps the target it resolved.
"""

from __future__ import annotations

from gateway import metrics
from gateway.traffic_split import TrafficSplit
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


Splits = dict[str, TrafficSplit]


def traffic_splits(table: RoutingTable) -> Splits:
    """Per model, the split over its available versions with a positive weight; without one,
    the latest available version as a one-version split (so a request never scans versions)."""
    splits = {}
    for name, route in table.models.items():
        weights = {
            v: w
            for v, w in route.traffic.items()
            if w > 0 and v in route.versions and route.versions[v].available
        }
        latest = _latest_available(route)
        if weights:
            splits[name] = TrafficSplit(weights)
        elif latest is not None:
            splits[name] = TrafficSplit({latest.version: 1.0})
    return splits


def resolve_version(
    table: RoutingTable, ref: ModelRef, splits: Splits | None = None
) -> VersionRoute:
    """Version, label, traffic split (sticky by ``ref.route_key``) or latest available."""
    route = model_route(table, ref)
    number = named_version(route, ref)
    if number is not None:
        version = route.versions.get(number)
    else:
        split = (splits if splits is not None else traffic_splits(table)).get(ref.name)
        version = route.versions.get(split.pick(ref.route_key)) if split is not None else None
    if version is None or not version.available:
        raise ServingError(Code.NOT_FOUND, f"Servable not found for request: {ref.describe()}")
    return version


def resolve(table: RoutingTable, ref: ModelRef, splits: Splits | None = None) -> Target:
    """The version as ``resolve_version`` picks it, then the signature and its Triton model."""
    version = resolve_version(table, ref, splits)
    name = ref.signature or DEFAULT_SIGNATURE
    target = version.target(ref.name, name)
    if target is None:
        raise ServingError(
            Code.FAILED_PRECONDITION,
            f'Serving signature name: "{name}" not found in signature def',
        )
    return target


def _latest_available(route: ModelRoute) -> VersionRoute | None:
    available = [v for v in route.versions.values() if v.available]
    return max(available, key=lambda v: v.version) if available else None


class Router:
    """Holds the current table and its splits; ``publish`` swaps them in one assignment.

    Each resolution is counted (``gateway.metrics.routed``) with the rule that decided it and
    the label the request went through: the one it named, or for a weighted split the label of
    the picked version (``split_labels``).

    A gateway in its own process starts with ``waiting`` set (no table has arrived from the
    catalog yet): every request is then UNAVAILABLE with that reason, not NOT_FOUND, until the
    first ``publish``.
    """

    def __init__(self, table: RoutingTable | None = None, waiting: str = "") -> None:
        initial = table or RoutingTable()
        splits = traffic_splits(initial)
        self._state = (initial, splits, split_labels(initial, splits), waiting)
        metrics.applied(initial)

    @property
    def table(self) -> RoutingTable:
        return self._state[0]

    @property
    def waiting(self) -> str:
        """Why nothing is served yet; empty once a table has been published."""
        return self._state[3]

    def publish(self, table: RoutingTable) -> None:
        splits = traffic_splits(table)
        self._state = (table, splits, split_labels(table, splits), "")
        metrics.applied(table)

    def serving_table(self) -> RoutingTable:
        """The table requests are answered from (UNAVAILABLE while waiting for the first)."""
        table, _, _, waiting = self._state
        if waiting:
            raise ServingError(Code.UNAVAILABLE, waiting)
        return table

    def resolve_version(self, ref: ModelRef) -> tuple[VersionRoute, ModelRoute]:
        table, splits, labels, waiting = self._state
        if waiting:
            raise ServingError(Code.UNAVAILABLE, waiting)
        version = resolve_version(table, ref, splits)
        _count(ref, version.version, labels)
        return version, table.models[ref.name]

    def resolve(self, ref: ModelRef) -> tuple[Target, ModelRoute]:
        """The target of a request and its model's route (shadow, logging, guard flags)."""
        table, splits, labels, waiting = self._state
        if waiting:
            raise ServingError(Code.UNAVAILABLE, waiting)
        target = resolve(table, ref, splits)
        _count(ref, target.version.version, labels)
        return target, table.models[ref.name]


def split_labels(table: RoutingTable, splits: Splits) -> dict[str, dict[int, str]]:
    """Per model split by weights, version -> the label naming it ("" when none; the first
    alphabetically when several do). Models served by their latest version are absent."""
    found: dict[str, dict[int, str]] = {}
    for name, split in splits.items():
        route = table.models[name]
        if not any(route.traffic.get(v, 0) > 0 for v in split.versions):
            continue  # the latest available version, not a weight, decides
        names: dict[int, str] = {}
        for label, version in sorted(route.labels.items()):
            names.setdefault(version, label)
        found[name] = {v: names.get(v, "") for v in split.versions}
    return found


def _count(ref: ModelRef, version: int, labels: dict[str, dict[int, str]]) -> None:
    if ref.version is not None:
        metrics.routed(ref.name, version, "", "version")
    elif ref.label is not None:
        metrics.routed(ref.name, version, ref.label, "label")
    else:
        split = labels.get(ref.name)
        if split is None:
            metrics.routed(ref.name, version, "", "latest")
        else:
            metrics.routed(ref.name, version, split.get(version, ""), "split")
