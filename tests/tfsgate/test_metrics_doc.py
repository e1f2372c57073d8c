"""docs/metrics.md's table against the dashboards' series list and the metric definitions.

The table is the one place that names every series; these checks keep it from drifting: every
series a dashboard queries (``deploy/grafana/series.txt``) is a row with the same type and jobs,
and every metric tfsgate defines (the gateway's registry, the control plane's) is a row with the
same type, labels and job. The scrape test checks the same rows against running processes.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

import control_plane.quality.feedback
import gateway.prediction_log
import gateway.shadow
from control_plane import metrics as control_metrics
from gateway import metrics as gateway_metrics
from tests.support.metrics_pages import dashboard_series, table

_DEFINERS = (control_plane.quality.feedback, gateway.prediction_log, gateway.shadow)


def defined(registry: CollectorRegistry) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Exposed name -> (type, labels) of every prometheus_client metric in ``registry``."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    # prometheus_client keeps no public list of a registry's metrics with their label names.
    collectors: Any = registry._collector_to_names  # noqa: SLF001
    for collector in collectors:
        name, kind = getattr(collector, "_name", ""), str(getattr(collector, "_type", ""))
        if not name.startswith("tfsgate_"):
            continue  # prometheus_client's process and platform collectors
        exposed = f"{name}_total" if kind == "counter" else name
        found[exposed] = (kind, tuple(collector._labelnames))  # noqa: SLF001
    return found


def test_every_dashboard_series_is_in_the_table() -> None:
    rows = table()
    for series in dashboard_series():
        name = series.name
        assert name in rows, f"{name} (deploy/grafana/series.txt) is missing from docs/metrics.md"
        assert rows[name].kind == series.kind, name
        assert rows[name].jobs == series.jobs, name


def test_every_defined_metric_is_in_the_table_with_its_labels() -> None:
    assert _DEFINERS  # importing them registers their metrics
    rows = table()
    gateway_side = defined(REGISTRY)
    for stored, shown in gateway_metrics._TF_NAMES.items():  # noqa: SLF001
        counter = gateway_side.pop(f"{stored}_total", None)
        kind, labels = counter or gateway_side.pop(stored)
        gateway_side[shown] = (kind, labels)
    sides = {
        "tfsgate-gateway": gateway_side,
        "tfsgate-control-plane": defined(control_metrics.REGISTRY),
    }
    for job, metrics in sides.items():
        for name, (kind, labels) in metrics.items():
            assert name in rows, f"{name} ({job}) is missing from docs/metrics.md"
            row = rows[name]
            assert (row.kind, row.labels) == (kind, labels), name
            assert job in row.jobs, f"{name}: exposed by {job}, the table says {set(row.jobs)}"
    for name, row in rows.items():
        for job in row.jobs & set(sides):
            assert name in sides[job], f"docs/metrics.md: {job} does not define {name}"


def test_rows_say_what_and_in_which_unit() -> None:
    for row in table().values():
        assert row.kind in ("counter", "gauge", "histogram"), row.name
        assert row.meaning and row.unit, row.name
