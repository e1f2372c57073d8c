"""tfsgate / Triton: Triton's own series (queue and compute time, batching, resources)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from deploy.grafana.panels import TRITON_MODEL, Panels, base, label_variable
from deploy.grafana.series import rate, ratio, sel


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
