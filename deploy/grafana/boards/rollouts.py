"""tfsgate / Canary vs stable: two labels of one model side by side."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from deploy.grafana.panels import (
    BOTH_ARMS,
    MODEL,
    NOT_OK,
    Panels,
    base,
    choice_variable,
    label_variable,
)
from deploy.grafana.series import quantile, rate, ratio


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
