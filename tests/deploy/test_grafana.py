"""deploy/grafana: dashboards up to date with their generator, structurally sound, valid PromQL.

Grafana itself is not installable on this machine, so its loading of the dashboards is not
exercised here; what it reads is checked instead: the provisioning files, every panel's datasource
and queries, PromQL parsed by Prometheus' own parser (promtool), and the series list the scrape
test of a running topology uses.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy import promtool

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
VARIABLE = re.compile(r"\$\{?(\w+)\}?")
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__all"}


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return importlib.import_module("deploy.grafana.generate")


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text())
        for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (name, panel["title"], target["expr"])
        for name, dashboard in dashboards.items()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def test_checked_in_files_are_the_generators_output(generator: ModuleType) -> None:
    rendered = generator.render()
    on_disk = {
        str(path.relative_to(GRAFANA)): path.read_text()
        for path in [*(GRAFANA / "dashboards").glob("*.json"), GRAFANA / "series.txt"]
    }
    assert sorted(on_disk) == sorted(rendered), "run make dashboards"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} is out of date: run make dashboards"


def test_the_five_dashboards_exist_with_unique_uids(dashboards: dict[str, dict[str, Any]]) -> None:
    assert set(dashboards) == {
        "overview.json",
        "models.json",
        "rollouts.json",
        "triton.json",
        "control-plane.json",
    }
    uids = [dashboard["uid"] for dashboard in dashboards.values()]
    assert len(set(uids)) == len(uids)


def test_every_panel_has_an_id_a_datasource_and_promql_targets(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in dashboards.items():
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        for panel in panels(dashboard):
            where = f"{name}: {panel.get('title')}"
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, where
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            targets = panel["targets"]
            assert targets, f"{where}: no queries"
            assert len({t["refId"] for t in targets}) == len(targets), f"{where}: duplicate refIds"
            for target in targets:
                assert target["datasource"] == panel["datasource"], where
                assert target["expr"].strip(), f"{where}: empty query"


def test_queries_use_only_defined_variables(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in dashboards.items():
        defined = {variable["name"] for variable in dashboard["templating"]["list"]}
        assert "datasource" in defined
        texts = [expr for dash, _, expr in queries({name: dashboard}) if dash == name]
        texts += [
            v.get("query", "") for v in dashboard["templating"]["list"] if v["type"] == "query"
        ]
        for text in texts:
            used = set(VARIABLE.findall(text)) - BUILTIN_VARIABLES
            assert used <= defined, f"{name}: {used - defined} undefined in {text}"


def test_promql_parses_with_prometheus_own_parser(
    dashboards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Each query as a recording rule, template variables replaced, through ``promtool``."""
    rules = []
    for index, (_, _, expr) in enumerate(queries(dashboards)):
        concrete = (
            expr.replace("$__rate_interval", "1m")
            .replace("${model}", "half_plus_two")
            .replace("$", "")  # "$model" -> "model": a regex value, still valid PromQL
        )
        rules.append({"record": f"tfsgate:dashboard_query:{index}", "expr": concrete})
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool.check("rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_series_list_names_every_queried_metric(
    generator: ModuleType, dashboards: dict[str, dict[str, Any]]
) -> None:
    listed = {
        line.split("\t")[0]
        for line in (GRAFANA / "series.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    queried = set().union(*(generator.series_in(expr) for _, _, expr in queries(dashboards)))
    assert listed == queried
    # The names issue 10 asks for: TF Serving's, Triton's GPU series, tfsgate's own.
    assert {
        ":tensorflow:serving:request_count",
        ":tensorflow:serving:request_latency_bucket",
        ":tensorflow:serving:runtime_latency_bucket",
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "tfsgate_requests_total",
    } <= listed


def test_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    provisioning = GRAFANA / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus" and source["isDefault"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "tfsgate.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/tfsgate"
