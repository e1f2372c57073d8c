"""The gateway's series in-process: labels from routing, bounded names, TF Serving's format.

The scrape of a running ``tfsgate serve`` is ``tests/test_metrics_scrape.py``; here the recording
points are driven directly (the registry is process-wide, so assertions are on differences).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from gateway.routing import Router
from gateway.types import ModelRef
from tfsgate.core.routing_table import ModelRoute, RoutingTable, VersionRoute
from tfsgate.core.status import Code


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def table(generation: int = 7, traffic: dict[int, float] | None = None) -> RoutingTable:
    def version(n: int) -> VersionRoute:
        return VersionRoute(
            n, "AVAILABLE", triton_models={"serving_default": "mx__serving_default"}
        )

    route = ModelRoute(
        "mx",
        {1: version(1), 2: version(2)},
        labels={"stable": 1, "canary": 2},
        traffic=traffic or {},
    )
    return RoutingTable(generation, {"mx": route})


@pytest.fixture
def tf_serving() -> Iterator[None]:
    metrics.record_tf_serving(True)
    yield
    metrics.record_tf_serving(False)


def decisions(version: str, label: str, rule: str) -> float:
    labels = {"model": "mx", "version": version, "label": label, "rule": rule}
    return value("tfsgate_routing_decisions_total", **labels)


def test_each_rule_is_counted_with_the_label_the_request_went_through() -> None:
    router = Router(table(traffic={1: 50.0, 2: 50.0}))
    before = {
        key: decisions(*key)
        for key in [("1", "", "version"), ("2", "canary", "label"), ("1", "stable", "split")]
    }
    router.resolve_version(ModelRef("mx", version=1))
    router.resolve_version(ModelRef("mx", label="canary"))
    # A route key is sticky: find one that the split sends to version 1.
    key = next(f"k{i}" for i in range(100) if _split_pick(router, f"k{i}") == 1)
    router.resolve_version(ModelRef("mx", route_key=key))
    assert decisions("1", "", "version") == before["1", "", "version"] + 1
    assert decisions("2", "canary", "label") == before["2", "canary", "label"] + 1
    assert decisions("1", "stable", "split") >= before["1", "stable", "split"] + 1


def _split_pick(router: Router, key: str) -> int:
    return router._state[1]["mx"].pick(key)


def test_latest_without_weights() -> None:
    router = Router(table())
    before = decisions("2", "", "latest")
    router.resolve_version(ModelRef("mx"))
    assert decisions("2", "", "latest") == before + 1
    assert value("tfsgate_routing_table_version") == 7


def test_requests_carry_the_routed_version_and_label() -> None:
    router = Router(table())
    labels = {
        "protocol": "rest",
        "method": "predict",
        "model": "mx",
        "version": "2",
        "label": "canary",
        "code": "OK",
    }
    before = value("tfsgate_requests_total", **labels)
    router.resolve_version(ModelRef("mx", label="canary"))
    metrics.observe("rest", "predict", "mx", Code.OK, 0.004)
    assert value("tfsgate_requests_total", **labels) == before + 1
    histogram = {k: v for k, v in labels.items() if k != "code"}
    assert value("tfsgate_request_duration_seconds_bucket", le="0.005", **histogram) >= 1


def test_a_model_outside_the_table_is_never_a_label() -> None:
    Router(table())
    metrics.observe("grpc", "predict", "random_name_77", Code.NOT_FOUND, 0.001)
    text = metrics.exposition()[0].decode()
    assert "random_name_77" not in text


def test_triton_calls_are_labelled_with_the_tf_model() -> None:
    Router(table())
    before = value(
        "tfsgate_triton_request_duration_seconds_count", model="mx", version="1", triton="t1"
    )
    metrics.triton_call("mx__serving_default", 1, "t1", 0.002)
    after = value(
        "tfsgate_triton_request_duration_seconds_count", model="mx", version="1", triton="t1"
    )
    assert after == before + 1


def test_tf_serving_buckets_are_tf_exponential_buckets() -> None:
    # util.cc: monitoring::Buckets::Exponential(10, 1.8, 33), microseconds.
    assert len(metrics.TF_BUCKETS) == 33
    assert metrics.TF_BUCKETS[:3] == (10.0, 18.0, 10.0 * 1.8 * 1.8)
    assert all(math.isclose(b, 10 * 1.8**i) for i, b in enumerate(metrics.TF_BUCKETS))


@pytest.mark.usefixtures("tf_serving")
def test_tf_serving_series_as_tf_serving_writes_them() -> None:
    Router(table())
    metrics.observe("rest", "predict", "mx", Code.OK, 0.0005)  # 500 us
    metrics.observe("rest", "status", "mx", Code.OK, 0.0001)
    metrics.observe("grpc", "predict", "mx", Code.INVALID_ARGUMENT, 0.001)
    metrics.observe("grpc", "status", "mx", Code.OK, 0.001)  # GetModelStatus: not counted by TF
    metrics.runtime("mx", "Predict", 0.0003)
    text = metrics.exposition()[0].decode()
    lines = text.splitlines()
    assert "# TYPE :tensorflow:serving:request_count counter" in lines
    count = [line for line in lines if line.startswith(":tensorflow:serving:request_count{")]
    assert ':tensorflow:serving:request_count{model_name="mx",status="OK"}' in "\n".join(count)
    assert all(not line.split(" ")[0].endswith("_total") for line in count)
    assert all(line.rsplit(" ", 1)[1].isdigit() for line in count)  # TF prints counts as %d
    # Latency only for OK answers (http_server.cc, prediction_service_impl.cc); REST GETs have
    # no API name; gRPC's GetModelStatus is not counted at all.
    latency = [line for line in lines if line.startswith(":tensorflow:serving:request_latency_")]
    first = 'model_name="mx",API="predict",entrypoint="REST",le="612.22"}'
    assert any(first in line and int(line.rsplit(" ", 1)[1]) >= 1 for line in latency)
    assert any('API="",entrypoint="REST"' in line for line in latency)
    assert not any('entrypoint="GRPC"' in line for line in latency)
    assert not any("status" in line for line in latency)
    runtime = [line for line in lines if line.startswith(":tensorflow:serving:runtime_latency_")]
    assert any('API="Predict",runtime="Triton",le="+Inf"' in line for line in runtime)
    # The page parses, and every histogram has TF's 33 bounds plus +Inf.
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = families[":tensorflow:serving:request_latency"]
    bounds = {s.labels["le"] for s in histogram.samples if s.name.endswith("_bucket")}
    assert len(bounds) == 34


def test_tf_serving_series_are_off_without_the_monitoring_config() -> None:
    Router(table())
    metrics.observe("rest", "predict", "mx", Code.OK, 0.001)
    assert ":tensorflow:serving:" not in metrics.exposition()[0].decode()
