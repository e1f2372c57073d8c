"""tfsgate / Overview: traffic, errors, latency and the health of every role."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from deploy.grafana.panels import AVAILABLE, NOT_OK, Panels, base
from deploy.grafana.series import quantile, rate, ratio, sel


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
        # Every gateway and the control plane report each instance: one count per instance,
        # READY when all of them see it so.
        .with_panel(
            p.stat("Tritons READY", f"sum(min by (triton) ({sel('tfsgate_triton_ready')}))")
        )
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
