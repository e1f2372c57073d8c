"""What the gateway's and the control plane's Prometheus metrics share.

Counters and histograms carry no ``_created`` samples (prometheus_client adds one per series by
default, doubling what every scrape carries for a value no dashboard reads); request-scale
latencies share one set of buckets, so gateway and Triton times compare bucket for bucket.
"""

from __future__ import annotations

from prometheus_client import disable_created_metrics

disable_created_metrics()

# Seconds, 1 ms to 10 s: a request, or its time in Triton.
REQUEST_SECONDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

# How often a role asks each Triton instance whether it is READY (tfsgate_triton_ready).
TRITON_PROBE_SECONDS = 2.0
