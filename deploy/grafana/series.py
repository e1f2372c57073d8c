"""The metric series tfsgate's dashboards may query, and PromQL built only from them.

Series come from three places, named as each names them:
- TF Serving's own (when ``--monitoring_config_file`` enables Prometheus): ``:tensorflow:serving:*``,
  latencies in microseconds, labels ``model_name``, ``status``, ``API``, ``entrypoint``, ``runtime``;
- tfsgate's gateways and control plane: ``tfsgate_*``, seconds;
- Triton: ``nv_*``, durations as cumulative microsecond counters; its ``model`` label is the
  derived Triton model name ``<tf model>__<signature>`` (tfsgate.core.naming).

``sel`` refuses a name missing from ``SERIES``, so every queried series has a source and a meaning
in ``series.txt``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

RATE = "$__rate_interval"


@dataclass(frozen=True)
class Series:
    source: str  # jobs that expose it, comma-separated (prometheus.yml's job names)
    kind: str  # counter, gauge, histogram
    help: str
    gpu_only: bool = False


SERIES: dict[str, Series] = {
    # -- TF Serving's names (gateway, with --monitoring_config_file) --------------------------------
    ":tensorflow:serving:request_count": Series(
        "tfsgate-gateway", "counter", "requests by model_name and status (TF status name)"
    ),
    ":tensorflow:serving:request_latency_bucket": Series(
        "tfsgate-gateway",
        "histogram",
        "request wall time in microseconds by model_name, API, entrypoint (GRPC, REST)",
    ),
    ":tensorflow:serving:runtime_latency_bucket": Series(
        "tfsgate-gateway",
        "histogram",
        "model runtime in microseconds by model_name, API, runtime",
    ),
    # -- tfsgate's gateway ------------------------------------------------------------------------
    "tfsgate_requests_total": Series(
        "tfsgate-gateway",
        "counter",
        "requests by protocol, method, model, version, label (the one the request was routed"
        " through, named by the client or picked by a traffic split; empty when none), code",
    ),
    "tfsgate_request_duration_seconds_bucket": Series(
        "tfsgate-gateway",
        "histogram",
        "request received to answer ready, by protocol, method, model, version, label",
    ),
    "tfsgate_triton_request_duration_seconds_bucket": Series(
        "tfsgate-gateway",
        "histogram",
        "time inside Triton calls as the gateway sees it, by model, version, triton (instance)",
    ),
    "tfsgate_routing_decisions_total": Series(
        "tfsgate-gateway",
        "counter",
        "routing decisions by model, version, label, rule (version, label, latest, split, shadow)",
    ),
    "tfsgate_routing_table_version": Series(
        "tfsgate-gateway,tfsgate-control-plane",
        "gauge",
        "routing table version applied (gateways) or published (control plane)",
    ),
    "tfsgate_triton_ready": Series(
        "tfsgate-gateway,tfsgate-control-plane",
        "gauge",
        "1 while a Triton instance (label triton) answers READY",
    ),
    # -- tfsgate's control plane ------------------------------------------------------------------
    "tfsgate_control_plane_leader": Series(
        "tfsgate-control-plane", "gauge", "1 on the active control plane, 0 on a standby"
    ),
    "tfsgate_model_versions": Series(
        "tfsgate-control-plane",
        "gauge",
        "catalog versions by model and state (START, LOADING, AVAILABLE, UNLOADING, END, FAILED)",
    ),
    "tfsgate_reconcile_duration_seconds_bucket": Series(
        "tfsgate-control-plane", "histogram", "reconcile pass duration by triton (instance)"
    ),
    "tfsgate_reconcile_failures_total": Series(
        "tfsgate-control-plane", "counter", "failed reconcile passes by model and triton"
    ),
    "tfsgate_conversion_duration_seconds_bucket": Series(
        "tfsgate-control-plane",
        "histogram",
        "SavedModel to Triton conversion time by the runner it ended on"
        " (onnxruntime, tensorflow, mixed, failed)",
    ),
    # -- Prometheus' own, per scrape target -------------------------------------------------------
    "up": Series("prometheus", "gauge", "1 when the last scrape of a target succeeded"),
    # -- Triton ----------------------------------------------------------------------------------
    "nv_inference_request_success": Series("triton", "counter", "successful requests by model"),
    "nv_inference_request_failure": Series("triton", "counter", "failed requests by model"),
    "nv_inference_count": Series("triton", "counter", "inferences (batch items) by model"),
    "nv_inference_exec_count": Series("triton", "counter", "model executions (batches) by model"),
    "nv_inference_request_duration_us": Series("triton", "counter", "cumulative request time (us)"),
    "nv_inference_queue_duration_us": Series("triton", "counter", "cumulative queue time (us)"),
    "nv_inference_compute_infer_duration_us": Series(
        "triton", "counter", "cumulative compute (model execution) time (us)"
    ),
    "nv_cpu_utilization": Series("triton", "gauge", "host CPU utilisation, 0-1"),
    "nv_cpu_memory_used_bytes": Series("triton", "gauge", "host memory used"),
    "nv_gpu_utilization": Series("triton", "gauge", "GPU utilisation, 0-1", gpu_only=True),
    "nv_gpu_memory_used_bytes": Series("triton", "gauge", "GPU memory used", gpu_only=True),
    "nv_gpu_memory_total_bytes": Series("triton", "gauge", "GPU memory total", gpu_only=True),
}

SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{")


def sel(name: str, *matchers: str) -> str:
    """A series selector; always with braces, which is how ``series_in`` finds metric names."""
    if name not in SERIES:
        raise KeyError(f"{name} is not in SERIES: add it there with its source and meaning")
    return f"{name}{{{','.join(matchers)}}}"


def series_in(expr: str) -> set[str]:
    return set(SELECTOR.findall(expr))


def rate(name: str, *matchers: str) -> str:
    return f"rate({sel(name, *matchers)}[{RATE}])"


def quantile(q: float, bucket: str, by: Iterable[str], *matchers: str, scale: str = "") -> str:
    grouping = ", ".join(["le", *by])
    return f"histogram_quantile({q}, sum by ({grouping}) ({rate(bucket, *matchers)})){scale}"


def ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / clamp_min({denominator}, 1e-9)"
