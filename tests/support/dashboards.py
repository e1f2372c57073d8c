"""The Grafana dashboards' panel queries as Grafana would send them, for tests that run them
against a real Prometheus (a live ``tfsgate serve``, the compose topology)."""

from __future__ import annotations

import json
from pathlib import Path

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
# Series only a GPU host exposes: panels built on them have nothing to show on a CPU Triton.
GPU_ONLY = ("nv_gpu_",)


def panel_queries(model: str, rate_interval: str) -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL) of every panel target, with the template variables as a
    user picks them: ``model``, every version and label, the arms stable and canary, and
    ``$__rate_interval`` as Grafana makes it for the targets' scrape interval (4 scrapes)."""
    variables = {
        "${model}": model,
        "$model": model,
        "$version": ".*",
        "$label": ".*",
        "$baseline": "stable",
        "$candidate": "canary",
        "$__rate_interval": rate_interval,
    }
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        stack = list(json.loads(path.read_text()).get("panels") or [])
        while stack:
            panel = stack.pop()
            stack.extend(panel.get("panels") or [])
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in variables.items():
                    expr = expr.replace(variable, value)
                if "$" in expr:
                    raise ValueError(f"{path.name} / {panel['title']}: unknown variable in {expr}")
                queries.append((path.stem, panel["title"], expr))
    return queries


def gpu_only(expr: str) -> bool:
    return any(prefix in expr for prefix in GPU_ONLY)
