"""Scrape a running ``tfsgate serve``: every series the dashboards query, with docs/metrics.md's
labels, on the page of the role that exposes it, and counts that match the requests sent.

One server (two versions of a factory model, labels stable and canary, a 50/50 split over them,
``--monitoring_config_file`` enabling TF Serving's series, the admin port open) and three pages:
the gateway's REST metrics path, the admin ``/metrics``, the embedded Triton's metrics port.
Requests go over REST (plain HTTP) and gRPC (the official tensorflow-serving-api client), one at
a time so each is one Triton call; the assertions are on the difference between a scrape before
and one after them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.support.dashboards import gpu_only, panel_queries
from tests.support.metrics_pages import Page, dashboard_series, scrape, table
from tests.support.models import model_config
from tests.support.servers import ServerProcess, free_port, start_server

pytestmark = pytest.mark.triton  # starts tfsgate serve with its tritonserver

MODEL = "hpt"
TRITON_MODEL = MODEL  # its ONNX signatures share one Triton model
PATH = "/monitoring/prometheus/tfs_metrics"
MONITORING = f'prometheus_config {{ enable: true path: "{PATH}" }}\n'
LABELS = 'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 }'
JOBS = ("tfsgate-gateway", "tfsgate-control-plane", "triton")


@dataclass
class Serve:
    server: ServerProcess
    admin_url: str
    triton_metrics_url: str

    def pages(self) -> dict[str, Page]:
        return {
            "tfsgate-gateway": scrape(f"{self.server.rest_url}{PATH}"),
            "tfsgate-control-plane": scrape(f"{self.admin_url}/metrics"),
            "triton": scrape(self.triton_metrics_url),
        }


@pytest.fixture(scope="module")
def serve(half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    home = tmp_path_factory.mktemp("metrics-serve")
    base = home / "models" / MODEL
    for version in (1, 2):
        shutil.copytree(half_plus_two / "00000123", base / str(version))
    config, monitoring = home / "models.config", home / "monitoring.config"
    config.write_text(model_config((MODEL, base), extra=LABELS))
    monitoring.write_text(MONITORING)
    admin_port = free_port()
    args = [
        f"--model_config_file={config}",
        f"--monitoring_config_file={monitoring}",
        f"--admin_port={admin_port}",
    ]
    with start_server(home, args, model=MODEL) as server:
        admin = f"http://127.0.0.1:{admin_port}"
        wait_for_versions(server, 2)
        # Unnamed requests are split over the labels (no token configured: loopback, no auth).
        put = httpx.put(
            f"{admin}/v1/admin/models/{MODEL}/traffic",
            json={"weights": {"stable": 50, "canary": 50}},
            timeout=30,
        )
        assert put.status_code == 200, put.text
        endpoints = json.loads((home / "triton" / "endpoints.json").read_text())
        yield Serve(server, admin, endpoints["metrics_url"])


def wait_for_versions(server: ServerProcess, count: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{server.rest_url}/v1/models/{MODEL}", timeout=10).json()
        states = [v["state"] for v in status.get("model_version_status", [])]
        if states.count("AVAILABLE") == count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{MODEL} has not {count} AVAILABLE versions:\n{server.log()[-3000:]}")


def rest_predict(server: ServerProcess, path: str = "") -> httpx.Response:
    url = f"{server.rest_url}/v1/models/{MODEL}{path}:predict"
    response = httpx.post(url, json={"instances": [1.0]}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def grpc_predict_stable(server: ServerProcess) -> Any:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.version_label = "stable"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0], shape=[1, 1], dtype=tf.float32))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(request, timeout=30)


@dataclass
class Sent:
    split: dict[str, int]  # version -> requests the split sent there
    canary: int = 3  # REST, label canary
    version_1: int = 2  # REST, version 1
    grpc_stable: int = 4  # gRPC, label stable
    refused: int = 1  # REST, per label: routed, then INVALID_ARGUMENT (an unknown input name)

    @property
    def predicts(self) -> int:
        return sum(self.split.values()) + self.canary + self.version_1 + self.grpc_stable


@pytest.fixture(scope="module")
def traffic(serve: Serve) -> tuple[dict[str, Page], dict[str, Page], Sent]:
    """Pages before and after: split, label, version and gRPC predicts, a status, a miss."""
    server = serve.server
    before = serve.pages()
    sent = Sent(split={"1": 0, "2": 0})
    for _ in range(8):
        sent.split[rest_predict(server).headers["x-model-version"]] += 1
    for _ in range(sent.canary):
        rest_predict(server, "/labels/canary")
    for _ in range(sent.version_1):
        rest_predict(server, "/versions/1")
    for _ in range(sent.grpc_stable):
        assert grpc_predict_stable(server).model_spec.version.value == 1
    for label in ("stable", "canary"):
        url = f"{server.rest_url}/v1/models/{MODEL}/labels/{label}:predict"
        for _ in range(sent.refused):
            refused = httpx.post(url, json={"inputs": {"no_such_input": [1.0]}}, timeout=30)
            assert refused.status_code == 400, refused.text
    assert httpx.get(f"{server.rest_url}/v1/models/{MODEL}", timeout=30).status_code == 200
    missing = httpx.post(f"{server.rest_url}/v1/models/random_name_42:predict", json={})
    assert missing.status_code == 404
    return before, serve.pages(), sent


def test_every_dashboard_series_is_exposed_with_its_documented_labels(
    serve: Serve, traffic: tuple[dict[str, Page], dict[str, Page], Sent]
) -> None:
    rows = table()
    pages = traffic[1]
    # Triton samples its CPU metrics every 2 s: give the first sample time to appear.
    deadline = time.monotonic() + 20
    while not pages["triton"].label_sets("nv_cpu_utilization") and time.monotonic() < deadline:
        time.sleep(1)
        pages["triton"] = scrape(serve.triton_metrics_url)
    checked = 0
    for series in dashboard_series():
        if series.gpu_only or series.name == "up":
            continue  # no GPU here; `up` is Prometheus' own
        documented = set(rows[series.name].labels)
        for job in series.jobs:
            found = pages[job].label_sets(series.sample)
            assert found, f"{series.sample} is not on the {job} page"
            for labels in found:
                assert labels == documented, f"{series.sample} on {job}: {labels} != {documented}"
            checked += 1
    assert checked >= 25


def test_gateway_counts_match_the_requests(
    traffic: tuple[dict[str, Page], dict[str, Page], Sent],
) -> None:
    before, after, sent = traffic
    old, new = before["tfsgate-gateway"], after["tfsgate-gateway"]

    def delta(name: str, **labels: str) -> float:
        return new.get(name, **labels) - old.get(name, **labels)

    def requests(protocol: str, method: str, version: str, label: str, code: str = "OK") -> float:
        labels = dict(protocol=protocol, method=method, model=MODEL, version=version, label=label)
        counted = delta("tfsgate_requests_total", **labels, code=code)
        if code == "OK":  # the histogram has no code label: every outcome is timed
            every_code = counted + delta(
                "tfsgate_requests_total", **labels, code="INVALID_ARGUMENT"
            )
            assert delta("tfsgate_request_duration_seconds_count", **labels) == every_code
        return counted

    stable_split, canary_split = sent.split["1"], sent.split["2"]
    assert requests("rest", "predict", "1", "stable") == stable_split
    assert requests("rest", "predict", "2", "canary") == canary_split + sent.canary
    assert requests("rest", "predict", "1", "stable", "INVALID_ARGUMENT") == sent.refused
    assert requests("rest", "predict", "2", "canary", "INVALID_ARGUMENT") == sent.refused
    assert requests("rest", "predict", "1", "") == sent.version_1
    assert requests("grpc", "predict", "1", "stable") == sent.grpc_stable
    assert requests("rest", "status", "", "") == 1
    miss = dict(protocol="rest", method="predict", model="", version="", label="")
    assert delta("tfsgate_requests_total", **miss, code="NOT_FOUND") == 1
    assert "random_name_42" not in new.text  # an unknown name never becomes a label value

    def decisions(version: str, label: str, rule: str) -> float:
        labels = dict(model=MODEL, version=version, label=label, rule=rule)
        return delta("tfsgate_routing_decisions_total", **labels)

    assert decisions("1", "stable", "split") == stable_split
    assert decisions("2", "canary", "split") == canary_split
    assert decisions("2", "canary", "label") == sent.canary + sent.refused
    assert decisions("1", "", "version") == sent.version_1
    assert decisions("1", "stable", "label") == sent.grpc_stable + sent.refused
    # One Triton call per request (sent one at a time), on the embedded instance.
    triton_calls = new.total(
        "tfsgate_triton_request_duration_seconds_count", model=MODEL, triton="embedded"
    ) - old.total("tfsgate_triton_request_duration_seconds_count", model=MODEL, triton="embedded")
    assert triton_calls == sent.predicts
    assert new.get("tfsgate_triton_ready", triton="embedded") == 1


def test_tf_serving_series_match_the_requests(
    traffic: tuple[dict[str, Page], dict[str, Page], Sent],
) -> None:
    before, after, sent = traffic
    old, new = before["tfsgate-gateway"], after["tfsgate-gateway"]

    def delta(name: str, **labels: str) -> float:
        return new.get(name, **labels) - old.get(name, **labels)

    rest_predicts = sent.predicts - sent.grpc_stable
    # Every REST request and gRPC Predict is counted; the status GET is a REST request too.
    ok = delta(":tensorflow:serving:request_count", model_name=MODEL, status="OK")
    assert ok == sent.predicts + 1
    assert delta(":tensorflow:serving:request_count", model_name="", status="NOT_FOUND") == 1
    refused = delta(
        ":tensorflow:serving:request_count", model_name=MODEL, status="INVALID_ARGUMENT"
    )
    assert refused == 2 * sent.refused
    latency = ":tensorflow:serving:request_latency_count"
    assert delta(latency, model_name=MODEL, API="predict", entrypoint="REST") == rest_predicts
    assert delta(latency, model_name=MODEL, API="Predict", entrypoint="GRPC") == sent.grpc_stable
    assert delta(latency, model_name=MODEL, API="", entrypoint="REST") == 1
    runtime = ":tensorflow:serving:runtime_latency_count"
    assert delta(runtime, model_name=MODEL, API="Predict", runtime="Triton") == sent.predicts
    # TF's format: no _total on the counter, TF's bucket boundaries as %.6g.
    assert "\n:tensorflow:serving:request_count{" in new.text
    assert ":tensorflow:serving:request_count_total" not in new.text
    buckets = {
        dict(ls)["le"] for n, ls in new.values if n == ":tensorflow:serving:request_latency_bucket"
    }
    assert {"10", "18", "32.4", "612.22", "1.47476e+09", "+Inf"} <= buckets
    assert len(buckets) == 34


def test_control_plane_and_triton_pages(
    serve: Serve, traffic: tuple[dict[str, Page], dict[str, Page], Sent]
) -> None:
    before, after, sent = traffic
    gateway, control, triton = (after[job] for job in JOBS)
    assert control.get("tfsgate_control_plane_leader") == 1
    assert control.get("tfsgate_model_versions", model=MODEL, state="AVAILABLE") == 2
    assert control.get("tfsgate_model_versions", model=MODEL, state="FAILED") == 0
    assert control.total("tfsgate_conversion_duration_seconds_count") == 2  # one per version
    assert control.get("tfsgate_reconcile_duration_seconds_count", triton="embedded") >= 1
    assert control.get("tfsgate_reconcile_failures_total", model=MODEL, triton="embedded") == 0
    assert control.get("tfsgate_triton_ready", triton="embedded") == 1
    published = control.get("tfsgate_routing_table_version")
    assert published > 0
    # The pages are read one after the other: a table published between the two reads is on
    # the control plane's only (CI saw 2 against 3). Read them again, the control plane's first;
    # a gateway that stays behind still fails here.
    deadline = time.monotonic() + 10
    while gateway.get("tfsgate_routing_table_version") != published:
        assert time.monotonic() < deadline, (
            gateway.get("tfsgate_routing_table_version"),
            published,
        )
        time.sleep(0.1)
        published = scrape(f"{serve.admin_url}/metrics").get("tfsgate_routing_table_version")
        gateway = scrape(f"{serve.server.rest_url}{PATH}")
    assert not control.label_sets("tfsgate_requests_total")  # each role's page, its series
    # Triton counted the same requests, by version of the derived Triton model.
    old = before["triton"]

    def served(version: str) -> float:
        labels = dict(model=TRITON_MODEL, version=version)
        name = "nv_inference_request_success"
        return triton.get(name, **labels) - old.get(name, **labels)

    assert served("1") == sent.split["1"] + sent.version_1 + sent.grpc_stable
    assert served("2") == sent.split["2"] + sent.canary


def test_pages_pass_promtool(traffic: tuple[dict[str, Page], dict[str, Page], Sent]) -> None:
    """Prometheus' own parser and linter on each page (``promtool check metrics``)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    for job, page in traffic[1].items():
        result = subprocess.run(
            [promtool, "check", "metrics"], input=page.text, capture_output=True, text=True
        )
        # Lint findings (naming advice) are printed but only a parse error fails the check;
        # TF Serving's own names (colons, no _total) draw lint advice by design.
        assert "error while linting" not in result.stderr + result.stdout, (job, result.stderr)


def test_only_get_serves_metrics(serve: Serve) -> None:
    response = httpx.post(f"{serve.server.rest_url}{PATH}")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed request")


# -- the dashboards against these series, through a real Prometheus -------------------------------


@contextlib.contextmanager
def prometheus(serve: Serve, home: Path) -> Iterator[str]:
    """Debian's prometheus scraping the three pages every second, as deploy/prometheus does."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    triton = httpx.URL(serve.triton_metrics_url)
    targets = {
        "tfsgate-gateway": (f"127.0.0.1:{serve.server.rest_port}", PATH),
        "tfsgate-control-plane": (httpx.URL(serve.admin_url).netloc.decode(), "/metrics"),
        "triton": (triton.netloc.decode(), triton.path),
    }
    jobs = "".join(
        f"  - job_name: {job}\n    metrics_path: {path}\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
        for job, (target, path) in targets.items()
    )
    config = home / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n{jobs}"
    )
    url = f"http://127.0.0.1:{free_port()}"
    with open(home / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'tsdb'}",
                f"--web.listen-address={url.removeprefix('http://')}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query(url: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=30)
    assert response.status_code == 200, (promql, response.text)
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_every_dashboard_query_returns_series(
    serve: Serve,
    traffic: tuple[dict[str, Page], dict[str, Page], Sent],
    tmp_path: Path,
) -> None:
    """Item 4 against real series: each panel's PromQL, as Grafana sends it, answers."""
    with prometheus(serve, tmp_path) as url:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                # Its query API answers 503 until the TSDB is open: ask once it says ready.
                if httpx.get(f"{url}/-/ready", timeout=5).status_code == 200:
                    up = query(url, "up == 1")
                    if {r["metric"]["job"] for r in up} == set(JOBS):
                        break
            time.sleep(1)
        else:
            pytest.fail(f"not every target is up: {(tmp_path / 'prometheus.log').read_text()}")
        # Requests while Prometheus watches, so rates have increases to show; then enough
        # scrapes for the 15 s rate window.
        for _ in range(5):
            rest_predict(serve.server)
            rest_predict(serve.server, "/labels/canary")
        time.sleep(8)
        empty = [
            (board, title, expr)
            for board, title, expr in panel_queries(MODEL, rate_interval="15s")
            if not gpu_only(expr) and not query(url, expr)
        ]
        assert not empty, "\n".join(f"{b} / {t}: {e}" for b, t, e in empty)
