"""Gateway worker processes sharing one port: any worker's page sums every worker's series.

With ``PROMETHEUS_MULTIPROC_DIR`` set before they start, workers keep their values in files there
and ``gateway.metrics.exposition`` merges them, TF Serving's series included (stored under
private names, rendered in TF's format after the merge).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import metrics

pytestmark = pytest.mark.process  # starts worker processes

WORKER = """
import sys
from gateway import metrics
from gateway.routing import Router
from gateway.types import ModelRef
from tfsgate.core.routing_table import ModelRoute, RoutingTable, VersionRoute
from tfsgate.core.status import Code

metrics.record_tf_serving(True)
version = VersionRoute(1, "AVAILABLE", triton_models={"serving_default": "w__serving_default"})
router = Router(RoutingTable(int(sys.argv[2]), {"w": ModelRoute("w", {1: version})}))
for _ in range(int(sys.argv[1])):
    router.resolve_version(ModelRef("w"))
    metrics.observe("rest", "predict", "w", Code.OK, 0.002)
    metrics.runtime("w", "Predict", 0.001)
"""


def test_a_page_sums_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "multiproc"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for requests, generation in ((3, 5), (4, 6)):
        subprocess.run(
            [sys.executable, "-c", WORKER, str(requests), str(generation)], env=env, check=True
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    monkeypatch.setattr(metrics, "_tf_serving", True)
    text = metrics.exposition()[0].decode()
    lines = text.splitlines()

    def value(prefix: str) -> float:
        found = [line for line in lines if line.startswith(prefix)]
        assert len(found) == 1, (prefix, found)
        return float(found[0].rsplit(" ", 1)[1])

    labels = 'code="OK",label="",method="predict",model="w",protocol="rest",version="1"'
    assert value(f"tfsgate_requests_total{{{labels}}}") == 7
    assert (
        value('tfsgate_routing_decisions_total{label="",model="w",rule="latest",version="1"}') == 7
    )
    assert value("tfsgate_routing_table_version ") == 5  # the worker furthest behind
    assert value(':tensorflow:serving:request_count{model_name="w",status="OK"}') == 7
    # TF's label order, whatever order the merge left them in.
    count = (
        ':tensorflow:serving:runtime_latency_count{model_name="w",API="Predict",runtime="Triton"}'
    )
    assert value(count) == 7
    assert ":tensorflow:serving:request_count_total" not in text
