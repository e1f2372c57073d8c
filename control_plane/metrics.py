"""Prometheus metrics of the control plane, served by the admin API at ``GET /metrics``.

A registry of its own, so that in ``tfsgate serve`` (gateway and control plane in one process)
the gateway's metrics path and the admin path each show their role's series, the ones a
Prometheus job per role expects (``deploy/prometheus/prometheus.yml``). Recording points:
the reconciler (pass duration and failures, per Triton instance), the reconciler's conversions,
the publisher (table generation and versions by state, from each table it builds), leadership
(1 while this instance is the active control plane) and the Triton readiness probe. Every series
is in the table of ``docs/metrics.md``.
"""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tfsgate.core import shared_metrics  # noqa: F401 - no _created samples
from tfsgate.core.routing_table import RoutingTable

REGISTRY = CollectorRegistry()
STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END", "FAILED")

LEADER = Gauge(
    "tfsgate_control_plane_leader",
    "1 on the active control plane, 0 on a standby",
    registry=REGISTRY,
)
MODEL_VERSIONS = Gauge(
    "tfsgate_model_versions",
    "Versions of each served model by catalog state, as last published",
    ["model", "state"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "tfsgate_reconcile_duration_seconds",
    "Duration of reconcile passes, by Triton instance",
    ["triton"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
    registry=REGISTRY,
)
RECONCILE_FAILURES = Counter(
    "tfsgate_reconcile_failures",
    "Reconcile passes in which a model failed (its pass raised or a version failed to load)",
    ["model", "triton"],
    registry=REGISTRY,
)
CONVERSION_DURATION = Histogram(
    "tfsgate_conversion_duration_seconds",
    "SavedModel to Triton conversion time, by the runner the version ended on",
    ["runner"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
    registry=REGISTRY,
)
TABLE_VERSION = Gauge(
    "tfsgate_routing_table_version",
    "Generation of the last routing table this control plane published",
    registry=REGISTRY,
)
TRITON_READY = Gauge(
    "tfsgate_triton_ready",
    "1 while the Triton instance answers READY",
    ["triton"],
    registry=REGISTRY,
)

_published: set[tuple[str, str]] = set()


def leading(active: bool) -> None:
    LEADER.set(1 if active else 0)


def published(table: RoutingTable) -> None:
    """A table was published: its generation, and every model's versions by state (states with
    no versions read 0, so a dashboard sees a version leave LOADING)."""
    TABLE_VERSION.set(table.generation)
    counts = Tally(
        (name, v.state) for name, route in table.models.items() for v in route.versions.values()
    )
    current = {(name, state) for name in table.models for state in STATES}
    for model, state in _published - current:
        MODEL_VERSIONS.remove(model, state)  # a model no longer served
    for model, state in current:
        MODEL_VERSIONS.labels(model, state).set(counts.get((model, state), 0))
    _published.clear()
    _published.update(current)


def reconciled(triton: str, seconds: float, models: set[str], failed: set[str]) -> None:
    """A pass over ``models``; those in ``failed`` failed. Every model's failure count exists
    from its first pass on (at 0), so ``rate()`` and alerts see it before the first failure."""
    RECONCILE_DURATION.labels(triton).observe(seconds)
    for model in models | failed:
        RECONCILE_FAILURES.labels(model, triton).inc(1 if model in failed else 0)


def converted(runner: str, seconds: float) -> None:
    CONVERSION_DURATION.labels(runner).observe(seconds)


def triton_ready(triton: str, ready: bool) -> None:
    TRITON_READY.labels(triton).set(1 if ready else 0)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
