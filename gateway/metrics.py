"""Prometheus metrics of the front doors: one counter and one latency histogram.

Recorded once per request where each protocol maps its errors (the REST app, the gRPC
interceptor), so every outcome is counted. The model label is dropped for NOT_FOUND answers: a
client asking for random names must not grow the series without bound.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from tfsgate.core.status import Code

REQUESTS = Counter(
    "tfsgate_requests",
    "TF-Serving API requests by protocol, method, model and TF status code",
    ["protocol", "method", "model", "code"],
)
LATENCY = Histogram(
    "tfsgate_request_duration_seconds",
    "Time from request received to answer ready, by protocol and method",
    ["protocol", "method"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
)
# TF Serving's default path for its Prometheus endpoint (monitoring_config.prometheus_config.path).
METRICS_PATH = "/monitoring/prometheus/metrics"


def observe(protocol: str, method: str, model: str, code: Code, seconds: float) -> None:
    shown = "" if code == Code.NOT_FOUND else model
    REQUESTS.labels(protocol, method, shown, code.name).inc()
    LATENCY.labels(protocol, method).observe(seconds)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
