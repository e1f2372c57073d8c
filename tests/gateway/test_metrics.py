"""Prometheus metrics at TF Serving's path on the REST port, counting both protocols."""

from __future__ import annotations

import grpc
import httpx
import pytest

from tests.support.servers import ServerProcess
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus' text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{"):
            series, value = line.rsplit(" ", 1)
            got = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
            if got == wanted:
                return float(value)
    return 0.0


def scrape(server: ServerProcess) -> str:
    response = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_requests_are_counted_by_protocol_method_model_and_code(server: ServerProcess) -> None:
    labels = {"protocol": "rest", "method": "predict", "model": "half_plus_two", "code": "OK"}
    before = sample(scrape(server), "tfsgate_requests_total", **labels)
    for _ in range(3):
        httpx.post(f"{server.rest_url}/v1/models/half_plus_two:predict", json={"instances": [1.0]})
    httpx.post(f"{server.rest_url}/v1/models/random_name_42:predict", json={"instances": [1.0]})
    request = protos.get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "half_plus_two"
    with grpc.insecure_channel(server.grpc_target) as channel:
        protos.model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request)
    text = scrape(server)
    assert sample(text, "tfsgate_requests_total", **labels) == before + 3
    not_found = {"protocol": "rest", "method": "predict", "model": "", "code": "NOT_FOUND"}
    assert sample(text, "tfsgate_requests_total", **not_found) >= 1
    assert "random_name_42" not in text  # unknown names never become series
    grpc_status = {"protocol": "grpc", "method": "status", "model": "half_plus_two", "code": "OK"}
    assert sample(text, "tfsgate_requests_total", **grpc_status) >= 1
    histogram = {"protocol": "rest", "method": "predict"}
    assert sample(text, "tfsgate_request_duration_seconds_count", **histogram) >= 3


def test_only_get_serves_metrics(server: ServerProcess) -> None:
    response = httpx.post(f"{server.rest_url}/monitoring/prometheus/metrics")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed request")
