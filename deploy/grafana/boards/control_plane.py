"""tfsgate / Control plane: leadership, catalog states, reconcile passes, conversions and routing
propagation."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from deploy.grafana.panels import CONTROL_PLANE_JOB, GATEWAY_JOB, ROLE_JOBS, Panels, base
from deploy.grafana.series import quantile, rate, sel


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
