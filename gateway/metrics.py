"""Prometheus metrics of a gateway: tfsgate's own series and TF Serving's.

Every series and label is listed in ``docs/metrics.md`` (a test keeps that table, the dashboards'
``deploy/grafana/series.txt`` and these definitions in step). Recording points, each once:

- the front doors (the REST app, the gRPC door's ``guarded`` wrapper) call ``observe`` once per
  request, where each protocol maps its errors, so every outcome is counted;
- the resolver (``gateway/routing.py``) calls ``routed`` once per resolution and ``applied`` per
  routing table; ``routed`` also leaves (version, label) in a context variable for ``observe``
  (REST and gRPC handle each request in a task of its own, so the value is the request's);
- the upstream client times each Triton call (``triton_call``), the data plane the runtime part
  of a request for TF Serving's ``runtime_latency`` (``runtime``).

Cheap on the hot path: a request only adds to plain tallies per label tuple (a count, a sum, a
bucket count found by bisection); they are applied to the prometheus_client metrics in bulk
before every read (the metrics page, any collection of the default registry), once a second while
requests come and at exit. Calling prometheus_client per request (a lock per value, a Python
loop over the buckets) was 14 % of the gateway's CPU per request at 16 clients, REST and gRPC
alike (bench/ab.py with the recording points stubbed out). Tallies are kept and applied on the
event loop's thread. Cardinality is bounded: the model label is kept only for models in the
routing table (a client asking for random names grows nothing), versions and labels come from
the table.

TF Serving's ``:tensorflow:serving:*`` series are recorded only when ``--monitoring_config_file``
enables Prometheus (``record_tf_serving``), with TF's names, labels and bucket boundaries
(``tensorflow_serving/servables/tensorflow/util.cc``) and rendered as TF's exporter writes them
(``util/prometheus_exporter.cc``: counters without ``_total``, ``le`` as ``%.6g``). They are stored
in prometheus_client metrics under private names so that with several worker processes
(``PROMETHEUS_MULTIPROC_DIR``) they are summed like the others.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from tfsgate.core.routing_table import RoutingTable
from tfsgate.core.shared_metrics import REQUEST_SECONDS
from tfsgate.core.status import Code

# TF Serving's default path for its Prometheus endpoint (monitoring_config.prometheus_config.path).
METRICS_PATH = "/monitoring/prometheus/metrics"
FLUSH_SECONDS = 1.0  # tallies reach the metrics (and, with worker processes, their files) within


class _Flusher(Collector):
    """Registered before every series below, so any collection of the default registry (the
    page, ``get_sample_value``) sees the tallies applied first."""

    def collect(self) -> Iterator[Metric]:
        flush()
        return iter(())

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no series of its own (and registering must not flush)


REGISTRY.register(_Flusher())

REQUESTS = Counter(
    "tfsgate_requests",
    "TF-Serving API requests by protocol, method, model, version, label and TF status code",
    ["protocol", "method", "model", "version", "label", "code"],
)
LATENCY = Histogram(
    "tfsgate_request_duration_seconds",
    "Time from request received to answer ready",
    ["protocol", "method", "model", "version", "label"],
    buckets=REQUEST_SECONDS,
)
TRITON_LATENCY = Histogram(
    "tfsgate_triton_request_duration_seconds",
    "Time of each Triton inference call as the gateway sees it",
    ["model", "version", "triton"],
    buckets=REQUEST_SECONDS,
)
DECISIONS = Counter(
    "tfsgate_routing_decisions",
    "Routing decisions by model, version, label and rule (version, label, latest, split, shadow)",
    ["model", "version", "label", "rule"],
)
TABLE_VERSION = Gauge(
    "tfsgate_routing_table_version",
    "Generation of the routing table this gateway applies",
    multiprocess_mode="livemin",
)
TRITON_READY = Gauge(
    "tfsgate_triton_ready",
    "1 while the Triton instance answers READY",
    ["triton"],
    multiprocess_mode="livemin",
)

# -- TF Serving's series (util.cc) ---------------------------------------------------------------


def _exponential(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """``monitoring::Buckets::Exponential``: the bound multiplied again for each bucket."""
    bounds, bound = [], scale
    for _ in range(count):
        bounds.append(bound)
        bound *= growth
    return tuple(bounds)


# "Scale of 10, power of 1.8 with bucket count 33 (~20 minutes)", in microseconds.
TF_BUCKETS = _exponential(10.0, 1.8, 33)
_TF_PREFIX = "tfsgate_tfserving_"
_TF_NAMES = {
    f"{_TF_PREFIX}request_count": ":tensorflow:serving:request_count",
    f"{_TF_PREFIX}request_latency": ":tensorflow:serving:request_latency",
    f"{_TF_PREFIX}runtime_latency": ":tensorflow:serving:runtime_latency",
}
TF_REQUEST_COUNT = Counter(
    f"{_TF_PREFIX}request_count", "The total number of requests.", ["model_name", "status"]
)
TF_REQUEST_LATENCY = Histogram(
    f"{_TF_PREFIX}request_latency",
    "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
    ["model_name", "API", "entrypoint"],
    buckets=TF_BUCKETS,
)
TF_RUNTIME_LATENCY = Histogram(
    f"{_TF_PREFIX}runtime_latency",
    "Distribution of wall time (in microseconds) for Tensorflow runtime.",
    ["model_name", "API", "runtime"],
    buckets=TF_BUCKETS,
)
# TF Serving counts and times these gRPC methods only (prediction_service_impl.cc), by these names.
_TF_GRPC_APIS = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}
# REST: TF's ``method`` is the verb after ":" of a POST path; GET status and metadata leave it "".
_TF_REST_APIS = {"status": "", "metadata": "", "malformed": ""}
RUNTIME = "Triton"  # TF Serving says TF1 or TFRT; here the model runs in Triton

# -- state shared by the recording points --------------------------------------------------------

# (version, label) of the request being served, left by ``routed`` for ``observe``.
ROUTED: ContextVar[tuple[str, str]] = ContextVar("tfsgate_routed", default=("", ""))
_tf_serving = False
_known: frozenset[str] = frozenset()  # models of the applied routing table
_triton_models: dict[str, str] = {}  # Triton model name -> TF model name
_tf_children: dict[tuple[Any, ...], Any] = {}
# Histogram bucket bounds as prometheus_client keeps them (+Inf last): bisect_left finds the
# bucket its observe() would, the first bound >= the value.
_BOUNDS = (*REQUEST_SECONDS, float("inf"))


class _Tally:
    """Observations of one histogram child not yet applied to it."""

    __slots__ = ("child", "count", "total", "buckets")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * len(_BOUNDS)

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.buckets[bisect_left(_BOUNDS, seconds)] += 1

    def apply(self) -> None:
        """prometheus_client's Histogram keeps a value per bucket (``_buckets``, not cumulative)
        and their sum (``_sum``): added to in bulk, as ``observe`` adds one at a time."""
        child = self.child
        child._sum.inc(self.total)
        for index, count in enumerate(self.buckets):
            if count:
                child._buckets[index].inc(count)
                self.buckets[index] = 0
        self.count, self.total = 0, 0.0


class _Counted:
    """Increments of one counter child not yet applied to it."""

    __slots__ = ("child", "count")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.count = 0

    def apply(self) -> None:
        self.child.inc(self.count)
        self.count = 0


_request_children: dict[tuple[Any, ...], tuple[_Counted, _Tally]] = {}
_decision_children: dict[tuple[Any, ...], tuple[_Counted, tuple[str, str]]] = {}
_triton_children: dict[tuple[Any, ...], _Tally] = {}
_flush_handle: asyncio.TimerHandle | None = None


def flush() -> None:
    """Apply every tally to its metric (before a read, once a second, at exit)."""
    global _flush_handle
    if _flush_handle is not None:
        _flush_handle.cancel()
        _flush_handle = None
    for counted, tally in _request_children.values():
        if counted.count:
            counted.apply()
        if tally.count:
            tally.apply()
    for counted, _ in _decision_children.values():
        if counted.count:
            counted.apply()
    for tally in _triton_children.values():
        if tally.count:
            tally.apply()


def _flush_soon() -> None:
    """The first tally since the last flush: one within FLUSH_SECONDS, on the running loop
    (without one, at the next read or at exit)."""
    global _flush_handle
    with contextlib.suppress(RuntimeError):
        _flush_handle = asyncio.get_running_loop().call_later(FLUSH_SECONDS, flush)


atexit.register(flush)


def record_tf_serving(enabled: bool) -> None:
    """Whether TF Serving's series are recorded (``--monitoring_config_file`` enables them)."""
    global _tf_serving
    _tf_serving = enabled


def applied(table: RoutingTable) -> None:
    """A routing table took effect: its generation, the models and Triton models it names."""
    global _known, _triton_models
    _known = frozenset(table.models)
    _triton_models = {
        triton: name
        for name, route in table.models.items()
        for version in route.versions.values()
        for triton in version.triton_models.values()
    }
    TABLE_VERSION.set(table.generation)


def routed(model: str, version: int, label: str, rule: str) -> None:
    """One routing decision; ``label`` is the one the request went through ("" when none)."""
    key = (model, version, label, rule)
    entry = _decision_children.get(key)
    if entry is None:
        shown = (str(version), label)
        entry = _decision_children[key] = (_Counted(DECISIONS.labels(model, *shown, rule)), shown)
    entry[0].count += 1
    if _flush_handle is None:
        _flush_soon()
    if rule != "shadow":
        ROUTED.set(entry[1])


def observe(protocol: str, method: str, model: str, code: Code, seconds: float) -> None:
    """One answered request (any outcome), with the version and label it was routed to."""
    if model not in _known:
        model = ""
    version, label = ROUTED.get()
    key = (protocol, method, model, version, label, code)
    children = _request_children.get(key)
    if children is None:
        children = _request_children[key] = (
            _Counted(REQUESTS.labels(protocol, method, model, version, label, code.name)),
            _Tally(LATENCY.labels(protocol, method, model, version, label)),
        )
    children[0].count += 1
    children[1].add(seconds)
    if _flush_handle is None:
        _flush_soon()
    if _tf_serving:
        _observe_tf(protocol, method, model, code, seconds)


def _observe_tf(protocol: str, method: str, model: str, code: Code, seconds: float) -> None:
    """``RecordModelRequestCount`` for every counted request, ``RecordRequestLatency`` for OK."""
    if protocol == "grpc":
        api = _TF_GRPC_APIS.get(method)
        if api is None:
            return
        entrypoint = "GRPC"
    else:
        api, entrypoint = _TF_REST_APIS.get(method, method), "REST"
    key = ("request", model, code, api, entrypoint)
    children = _tf_children.get(key)
    if children is None:
        latency = TF_REQUEST_LATENCY.labels(model, api, entrypoint) if code == Code.OK else None
        children = _tf_children[key] = (TF_REQUEST_COUNT.labels(model, code.name), latency)
    children[0].inc()
    if children[1] is not None:
        children[1].observe(seconds * 1e6)


def runtime(model: str, api: str, seconds: float) -> None:
    """TF Serving's ``RecordRuntimeLatency`` (``api``: Predict, Classify, Regress) for a request
    whose model run succeeded; a no-op unless TF Serving's series are on."""
    if not _tf_serving:
        return
    key = ("runtime", model, api)
    child = _tf_children.get(key)
    if child is None:
        child = _tf_children[key] = TF_RUNTIME_LATENCY.labels(model, api, RUNTIME)
    child.observe(seconds * 1e6)


def triton_call(triton_model: str, version: int, triton: str, seconds: float) -> None:
    """One Triton inference call (a coalesced call counts once) to instance ``triton``."""
    key = (triton_model, version, triton)
    tally = _triton_children.get(key)
    if tally is None:
        model = _triton_models.get(triton_model, triton_model)
        tally = _triton_children[key] = _Tally(TRITON_LATENCY.labels(model, str(version), triton))
    tally.add(seconds)
    if _flush_handle is None:
        _flush_soon()


def triton_ready(triton: str, ready: bool) -> None:
    TRITON_READY.labels(triton).set(1 if ready else 0)


def forget_triton(triton: str) -> None:
    """An instance this gateway no longer calls: its readiness series goes."""
    with contextlib.suppress(KeyError):
        TRITON_READY.remove(triton)


# -- exposition ----------------------------------------------------------------------------------


class _Families:
    """A registry-like view over collected families, for ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _collect() -> list[Metric]:
    """This process's metrics, or every worker's summed when workers share a multiprocess dir."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        flush()  # this worker's tallies into its files; the others' are at most a second old
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return list(registry.collect())
    return list(REGISTRY.collect())


def exposition() -> tuple[bytes, str]:
    """The metrics page: tfsgate's series in prometheus_client's format, then TF Serving's."""
    ours: list[Metric] = []
    tf: list[Metric] = []
    for family in _collect():
        if family.name not in _TF_NAMES:
            ours.append(family)
        elif _tf_serving:
            tf.append(family)
    return generate_latest(_Families(ours)) + tf_serving_text(tf).encode(), CONTENT_TYPE_LATEST


def tf_serving_text(families: Iterable[Metric]) -> str:
    """TF Serving's series as ``PrometheusExporter::GeneratePage`` writes them."""
    lines: list[str] = []
    for family in families:
        name = _TF_NAMES[family.name]
        if not family.samples:
            continue
        if family.type == "counter":
            lines.append(f"# TYPE {name} counter")
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    lines.append(f"{name}{{{_labels(sample.labels)}}} {int(sample.value)}")
            continue
        lines.append(f"# TYPE {name} histogram")
        for sample in family.samples:
            suffix = sample.name[len(family.name) :]
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            if suffix == "_bucket":
                le = sample.labels["le"]
                shown = "+Inf" if le == "+Inf" else f"{float(le):.6g}"
                text = _labels(labels)
                lines.append(
                    f'{name}_bucket{{{text}{"," if text else ""}le="{shown}"}} {int(sample.value)}'
                )
            elif suffix == "_sum":
                lines.append(f"{name}_sum{{{_labels(labels)}}} {sample.value!r}")
            elif suffix == "_count":
                lines.append(f"{name}_count{{{_labels(labels)}}} {int(sample.value)}")
    return "".join(f"{line}\n" for line in lines)


# TF's label order (util.cc); merged multiprocess samples come with their labels sorted.
_TF_ORDER = {"model_name": 0, "status": 1, "API": 1, "entrypoint": 2, "runtime": 2}


def _labels(labels: dict[str, str]) -> str:
    ordered = sorted(labels.items(), key=lambda item: _TF_ORDER.get(item[0], 9))
    return ",".join(f'{k}="{_escape(v)}"' for k, v in ordered)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
