"""tfsgate's Grafana dashboards, written as code with grafana-foundation-sdk: ``make dashboards``.

Writes ``dashboards/*.json`` (provisioned by ``provisioning/dashboards/tfsgate.yml``) and
``series.txt``, every metric series the dashboards query: the list a scrape test checks against
running gateways, control planes and Tritons. The checked-in files must equal this script's output
(``tests/deploy/test_grafana.py``), so edit this file and run ``make dashboards``, never the JSON.

Series come from three places, named as each names them:
- TF Serving's own (when ``--monitoring_config_file`` enables Prometheus): ``:tensorflow:serving:*``,
  latencies in microseconds, labels ``model_name``, ``status``, ``API``, ``entrypoint``, ``runtime``;
- tfsgate's gateways and control plane: ``tfsgate_*``, seconds;
- Triton: ``nv_*``, durations as cumulative microsecond counters; its ``model`` label is the
  derived Triton model name ``<tf model>__<signature>`` (tfsgate.core.naming).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

HERE = Path(__file__).resolve().parent
DASHBOARDS_DIR = HERE / "dashboards"
SERIES_FILE = HERE / "series.txt"
# Panels name the datasource through this variable: the provisioned Prometheus by default
# (provisioning/datasources/prometheus.yml gives it uid "prometheus"), any other one on import.
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
ALL = ".*"


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
        "SavedModel to Triton conversion time by runner (onnx, tensorflow)",
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


class Panels:
    """Numbers panels and refs so every id is unique within a dashboard."""

    def __init__(self) -> None:
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _targets(
        self, panel: db.Panel | timeseries.Panel | stat.Panel, queries: list[tuple[str, str]]
    ) -> None:
        for index, (expr, legend) in enumerate(queries):
            panel.with_target(
                prometheus.Dataquery()
                .expr(expr)
                .legend_format(legend)
                .ref_id(chr(ord("A") + index))
                .datasource(DATASOURCE)
            )

    def graph(
        self,
        title: str,
        queries: list[tuple[str, str]],
        unit: str = "short",
        width: int = 12,
        description: str = "",
    ) -> timeseries.Panel:
        panel = (
            timeseries.Panel()
            .id(self._id())
            .title(title)
            .description(description)
            .datasource(DATASOURCE)
            .unit(unit)
            .min(0)
            .span(width)
            .height(8)
        )
        self._targets(panel, queries)
        return panel

    def stat(self, title: str, expr: str, unit: str = "short", width: int = 4) -> stat.Panel:
        panel = (
            stat.Panel()
            .id(self._id())
            .title(title)
            .datasource(DATASOURCE)
            .unit(unit)
            .span(width)
            .height(4)
        )
        self._targets(panel, [(expr, title)])
        return panel

    def row(self, title: str) -> db.Row:
        return db.Row(title).id(self._id())


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def label_variable(name: str, label: str, metric: str, matchers: str = "") -> db.QueryVariable:
    query = f"label_values({metric}{{{matchers}}}, {name if label == '' else label})"
    return (
        db.QueryVariable(name)
        .label(name)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(ALL)
        .current(dm.VariableOption(text="All", value="$__all"))
    )


def choice_variable(name: str, default: str, metric: str, model_matcher: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(name)
        .datasource(DATASOURCE)
        .query(f"label_values({metric}{{{model_matcher}}}, label)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(text=default, value=default))
    )


def base(uid: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["tfsgate"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
    )


MODEL = 'model=~"$model"'
VERSION = 'version=~"$version"'
LABEL = 'label=~"$label"'
# Triton's model label is "<tf model>__<signature>"; braces keep Grafana from reading "$model__".
TRITON_MODEL = 'model=~"${model}__.+"'
NOT_OK = 'code!="OK"'
AVAILABLE = 'state="AVAILABLE"'
BOTH_ARMS = 'label=~"$baseline|$candidate"'
CONTROL_PLANE_JOB = 'job="tfsgate-control-plane"'
GATEWAY_JOB = 'job="tfsgate-gateway"'
ROLE_JOBS = 'job=~"tfsgate-.*|triton"'


def overview() -> db.Dashboard:
    p = Panels()
    total = f"sum({rate('tfsgate_requests_total')})"
    errors = f"sum({rate('tfsgate_requests_total', NOT_OK)})"
    return (
        base("tfsgate-overview", "tfsgate / Overview", "Traffic, errors, latency and health")
        .with_panel(p.stat("Requests/s", total, "reqps"))
        .with_panel(p.stat("Error ratio", ratio(errors, total), "percentunit"))
        .with_panel(
            p.stat(
                "p99 latency",
                quantile(0.99, "tfsgate_request_duration_seconds_bucket", []),
                "s",
            )
        )
        .with_panel(
            p.stat(
                "Versions AVAILABLE",
                f"sum({sel('tfsgate_model_versions', AVAILABLE)})",
            )
        )
        .with_panel(p.stat("Tritons READY", f"sum({sel('tfsgate_triton_ready')})"))
        .with_panel(p.stat("Control planes leading", f"sum({sel('tfsgate_control_plane_leader')})"))
        .with_panel(
            p.graph(
                "Requests by model",
                [(f"sum by (model) ({rate('tfsgate_requests_total')})", "{{model}}")],
                "reqps",
            )
        )
        .with_panel(
            p.graph(
                "Errors by code",
                [(f"sum by (code) ({rate('tfsgate_requests_total', NOT_OK)})", "{{code}}")],
                "reqps",
            )
        )
        .with_panel(
            p.graph(
                "Latency (all models)",
                [
                    (quantile(q, "tfsgate_request_duration_seconds_bucket", []), f"p{int(q * 100)}")
                    for q in (0.5, 0.95, 0.99)
                ],
                "s",
            )
        )
        .with_panel(
            p.graph(
                "Requests by protocol",
                [
                    (
                        f"sum by (protocol, method) ({rate('tfsgate_requests_total')})",
                        "{{protocol}} {{method}}",
                    )
                ],
                "reqps",
            )
        )
    )


def models() -> db.Dashboard:
    p = Panels()
    scope = (MODEL, VERSION, LABEL)
    requests = "tfsgate_requests_total"
    latency = "tfsgate_request_duration_seconds_bucket"
    triton = "tfsgate_triton_request_duration_seconds_bucket"
    tfs_model = 'model_name=~"$model"'
    dashboard = (
        base(
            "tfsgate-models",
            "tfsgate / Models",
            "Per model, version and label: traffic, errors, latency; gateway time against Triton time",
        )
        .with_variable(label_variable("model", "model", requests))
        .with_variable(label_variable("version", "version", requests, MODEL))
        .with_variable(label_variable("label", "label", requests, MODEL))
        .with_row(p.row("Traffic and errors"))
        .with_panel(
            p.graph(
                "Requests by version and label",
                [
                    (
                        f"sum by (model, version, label) ({rate(requests, *scope)})",
                        "{{model}} v{{version}} {{label}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            p.graph(
                "Errors by code",
                [
                    (
                        f"sum by (model, version, code) ({rate(requests, *scope, NOT_OK)})",
                        "{{model}} v{{version}} {{code}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            p.graph(
                "Error ratio by version",
                [
                    (
                        ratio(
                            f"sum by (model, version) ({rate(requests, *scope, NOT_OK)})",
                            f"sum by (model, version) ({rate(requests, *scope)})",
                        ),
                        "{{model}} v{{version}}",
                    )
                ],
                "percentunit",
            )
        )
        .with_panel(
            p.graph(
                "Routing decisions",
                [
                    (
                        f"sum by (model, rule, version) ({rate('tfsgate_routing_decisions_total', *scope)})",
                        "{{model}} {{rule}} -> v{{version}}",
                    )
                ],
                "reqps",
            )
        )
        .with_row(p.row("Latency: gateway against Triton"))
    )
    for q in (0.5, 0.95, 0.99):
        name = f"p{int(q * 100)}"
        dashboard = dashboard.with_panel(
            p.graph(
                f"{name}: request vs Triton",
                [
                    (
                        quantile(q, latency, ["model", "version"], *scope),
                        "{{model}} v{{version}} request",
                    ),
                    (
                        quantile(q, triton, ["model", "version"], MODEL, VERSION),
                        "{{model}} v{{version}} Triton",
                    ),
                ],
                "s",
                width=8,
                description="Whole request in the gateway, and the part spent in Triton calls;"
                " the gap is the gateway's own time (decode, routing, encode).",
            )
        )
    return (
        dashboard.with_row(p.row("TF Serving's series"))
        .with_panel(
            p.graph(
                "request_count by status",
                [
                    (
                        f"sum by (model_name, status) (rate({sel(':tensorflow:serving:request_count', tfs_model)}[{RATE}]))",
                        "{{model_name}} {{status}}",
                    )
                ],
                "reqps",
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "request_latency p99",
                [
                    (
                        quantile(
                            0.99,
                            ":tensorflow:serving:request_latency_bucket",
                            ["model_name", "API", "entrypoint"],
                            tfs_model,
                            scale=" / 1e6",
                        ),
                        "{{model_name}} {{API}} {{entrypoint}}",
                    )
                ],
                "s",
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "runtime_latency p99",
                [
                    (
                        quantile(
                            0.99,
                            ":tensorflow:serving:runtime_latency_bucket",
                            ["model_name", "API", "runtime"],
                            tfs_model,
                            scale=" / 1e6",
                        ),
                        "{{model_name}} {{API}} {{runtime}}",
                    )
                ],
                "s",
                width=8,
            )
        )
    )


def rollouts() -> db.Dashboard:
    p = Panels()
    requests = "tfsgate_requests_total"
    latency = "tfsgate_request_duration_seconds_bucket"
    dashboard = (
        base(
            "tfsgate-rollouts",
            "tfsgate / Canary vs stable",
            "Two labels of one model side by side: the candidate against the baseline",
        )
        .with_variable(label_variable("model", "model", requests))
        .with_variable(choice_variable("baseline", "stable", requests, MODEL))
        .with_variable(choice_variable("candidate", "canary", requests, MODEL))
        .with_panel(
            p.graph(
                "Traffic share",
                [
                    (
                        f"sum by (label) ({rate(requests, MODEL, BOTH_ARMS)})"
                        f" / scalar(sum({rate(requests, MODEL, BOTH_ARMS)}))",
                        "{{label}}",
                    )
                ],
                "percentunit",
                width=24,
            )
        )
    )
    for side in ("baseline", "candidate"):
        arm = f'label="${side}"'
        dashboard = dashboard.with_panel(
            p.graph(
                f"${side}: requests and errors",
                [
                    (f"sum({rate(requests, MODEL, arm)})", "requests"),
                    (f"sum({rate(requests, MODEL, arm, NOT_OK)})", "errors"),
                ],
                "reqps",
            )
        )
    for side in ("baseline", "candidate"):
        arm = f'label="${side}"'
        dashboard = dashboard.with_panel(
            p.graph(
                f"${side}: latency",
                [
                    (quantile(q, latency, [], MODEL, arm), f"p{int(q * 100)}")
                    for q in (0.5, 0.95, 0.99)
                ],
                "s",
            )
        )
    both = BOTH_ARMS
    return dashboard.with_panel(
        p.graph(
            "Error ratio, both",
            [
                (
                    ratio(
                        f"sum by (label) ({rate(requests, MODEL, both, NOT_OK)})",
                        f"sum by (label) ({rate(requests, MODEL, both)})",
                    ),
                    "{{label}}",
                )
            ],
            "percentunit",
        )
    ).with_panel(
        p.graph(
            "p95 latency, both",
            [(quantile(0.95, latency, ["label"], MODEL, both), "{{label}}")],
            "s",
        )
    )


def triton() -> db.Dashboard:
    p = Panels()

    def per_request(counter: str) -> str:
        return (
            ratio(
                f"sum by (model) ({rate(counter, TRITON_MODEL)})",
                f"sum by (model) ({rate('nv_inference_request_success', TRITON_MODEL)})",
            )
            + " / 1e6"
        )

    return (
        base(
            "tfsgate-triton",
            "tfsgate / Triton",
            "Triton's own series: queue and compute time, batching, GPU and host resources",
        )
        .with_variable(label_variable("model", "model", "tfsgate_requests_total"))
        .with_panel(
            p.graph(
                "Inferences by Triton model",
                [
                    (
                        f"sum by (model) ({rate('nv_inference_request_success', TRITON_MODEL)})",
                        "{{model}} ok",
                    ),
                    (
                        f"sum by (model) ({rate('nv_inference_request_failure', TRITON_MODEL)})",
                        "{{model}} failed",
                    ),
                ],
                "reqps",
            )
        )
        .with_panel(
            p.graph(
                "Batch size (inferences per execution)",
                [
                    (
                        ratio(
                            f"sum by (model) ({rate('nv_inference_count', TRITON_MODEL)})",
                            f"sum by (model) ({rate('nv_inference_exec_count', TRITON_MODEL)})",
                        ),
                        "{{model}}",
                    )
                ],
            )
        )
        .with_panel(
            p.graph(
                "Queue time per request",
                [(per_request("nv_inference_queue_duration_us"), "{{model}}")],
                "s",
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Compute time per request",
                [(per_request("nv_inference_compute_infer_duration_us"), "{{model}}")],
                "s",
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Request time per request",
                [(per_request("nv_inference_request_duration_us"), "{{model}}")],
                "s",
                width=8,
            )
        )
        .with_row(p.row("Resources"))
        .with_panel(
            p.graph(
                "GPU utilisation",
                [
                    (
                        f"max by (instance, gpu_uuid) ({sel('nv_gpu_utilization')})",
                        "{{instance}} {{gpu_uuid}}",
                    )
                ],
                "percentunit",
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "GPU memory",
                [
                    (f"sum by (instance) ({sel('nv_gpu_memory_used_bytes')})", "{{instance}} used"),
                    (
                        f"sum by (instance) ({sel('nv_gpu_memory_total_bytes')})",
                        "{{instance}} total",
                    ),
                ],
                "bytes",
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Host CPU and memory",
                [
                    (f"max by (instance) ({sel('nv_cpu_utilization')})", "{{instance}} CPU"),
                ],
                "percentunit",
                width=4,
            )
        )
        .with_panel(
            p.graph(
                "Host memory used",
                [(f"max by (instance) ({sel('nv_cpu_memory_used_bytes')})", "{{instance}}")],
                "bytes",
                width=4,
            )
        )
    )


def control_plane() -> db.Dashboard:
    p = Panels()
    return (
        base(
            "tfsgate-control-plane",
            "tfsgate / Control plane",
            "Leader and standby, catalog states, reconcile passes, conversions, routing propagation",
        )
        .with_panel(
            p.graph(
                "Scrape targets up",
                [(f"sum by (job) ({sel('up', ROLE_JOBS)})", "{{job}}")],
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Leader (1) and standby (0)",
                [(f"max by (instance) ({sel('tfsgate_control_plane_leader')})", "{{instance}}")],
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Tritons READY",
                [(f"min by (triton) ({sel('tfsgate_triton_ready')})", "{{triton}}")],
                width=8,
            )
        )
        .with_panel(
            p.graph(
                "Versions by state",
                [(f"sum by (state) ({sel('tfsgate_model_versions')})", "{{state}}")],
            )
        )
        .with_panel(
            p.graph(
                "Reconcile pass duration",
                [
                    (
                        quantile(q, "tfsgate_reconcile_duration_seconds_bucket", ["triton"]),
                        f"{{{{triton}}}} p{int(q * 100)}",
                    )
                    for q in (0.5, 0.95)
                ],
                "s",
            )
        )
        .with_panel(
            p.graph(
                "Reconcile failures",
                [
                    (
                        f"sum by (model, triton) ({rate('tfsgate_reconcile_failures_total')})",
                        "{{model}} {{triton}}",
                    )
                ],
                "ops",
            )
        )
        .with_panel(
            p.graph(
                "Conversion time p95",
                [
                    (
                        quantile(0.95, "tfsgate_conversion_duration_seconds_bucket", ["runner"]),
                        "{{runner}}",
                    )
                ],
                "s",
            )
        )
        .with_panel(
            p.graph(
                "Routing table version: published vs applied",
                [
                    (
                        f"max({sel('tfsgate_routing_table_version', CONTROL_PLANE_JOB)})",
                        "published",
                    ),
                    (
                        f"min({sel('tfsgate_routing_table_version', GATEWAY_JOB)})",
                        "applied by every gateway",
                    ),
                ],
                width=24,
                description="A gap that stays open means a gateway missed a change.",
            )
        )
    )


DASHBOARDS: dict[str, Callable[[], db.Dashboard]] = {
    "overview": overview,
    "models": models,
    "rollouts": rollouts,
    "triton": triton,
    "control-plane": control_plane,
}


def render() -> dict[str, str]:
    """File name (relative to this directory) -> content, for every generated file."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    files: dict[str, str] = {}
    used: set[str] = set()
    for name, build in DASHBOARDS.items():
        text = encoder.encode(build().build()) + "\n"
        files[f"dashboards/{name}.json"] = text
        for panel in _panels(json.loads(text)):
            for target in panel.get("targets", []):
                used |= series_in(target["expr"])
    lines = [
        "# Every series tfsgate's Grafana dashboards query (generated by generate.py).",
        "# name<TAB>job that exposes it<TAB>type<TAB>gpu-only<TAB>meaning",
    ]
    for series in sorted(used):
        meta = SERIES[series]
        gpu = "gpu" if meta.gpu_only else "-"
        lines.append(f"{series}\t{meta.source}\t{meta.kind}\t{gpu}\t{meta.help}")
    files["series.txt"] = "\n".join(lines) + "\n"
    return files


def _panels(dashboard: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []  # a collapsed row holds its panels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are out of date")
    args = parser.parse_args(argv)
    stale = []
    for relative, text in render().items():
        path = HERE / relative
        if path.exists() and path.read_text() == text:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print(f"out of date (run make dashboards): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
