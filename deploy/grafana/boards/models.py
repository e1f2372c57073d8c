"""tfsgate / Models: per model, version and label; the gateway's time against Triton's;
TF Serving's own series."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from deploy.grafana.panels import LABEL, MODEL, NOT_OK, VERSION, Panels, base, label_variable
from deploy.grafana.series import RATE, quantile, rate, ratio, sel


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
