"""The roles' pages: ``tfsgate gateway`` and ``tfsgate control-plane`` in their own processes,
each with its role's series (docs/metrics.md), the gateway's counts matching what it answered and
its routing table version catching up with the one the control plane published."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.metrics_pages import Page, scrape
from tests.support.roles import admin_answers, predict_status, running, wait_for

pytestmark = [pytest.mark.triton, pytest.mark.process]

MODEL = "half_plus_two"
PATH = "/monitoring/prometheus/metrics"


def test_each_role_serves_its_own_series(half_plus_two: Path, tmp_path: Path) -> None:
    home = tmp_path / "control"
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{PATH}" }}\n')
    control_args = [
        f"--model_name={MODEL}",
        f"--model_base_path={half_plus_two}",
        f"--model_repository={home / 'model_repository'}",
    ]
    gateway_args = [
        f"--database_url=sqlite:///{home / 'catalog.db'}",
        f"--monitoring_config_file={monitoring}",
    ]
    with running("control-plane", home, control_args) as control:
        wait_for(control, lambda: admin_answers(control), "admin API")
        with running("gateway", tmp_path / "gateway", gateway_args) as gateway:
            wait_for(gateway, lambda: predict_status(gateway) == 200, "serving")
            gateway_page = f"{gateway.rest_url}{PATH}"
            control_page = f"http://127.0.0.1:{control.admin_port}/metrics"
            before = scrape(gateway_page)
            for _ in range(3):
                assert predict_status(gateway) == 200
            assert predict_status(gateway, "no_such_model") == 404
            # The gateway probes its Triton every 2 s: wait for its first answer.
            wait_for(
                gateway,
                lambda: scrape(gateway_page).total("tfsgate_triton_ready") == 1,
                "tfsgate_triton_ready on the gateway",
                30,
            )
            # The control plane may publish again after the gateway first served (a later
            # reconcile pass); the gateway follows the feed every 250 ms. Read both pages until
            # the gateway has caught up (the control plane's page first: its version only grows).
            pages: dict[str, Page] = {}

            def caught_up() -> bool:
                pages["plane"] = scrape(control_page)
                pages["after"] = scrape(gateway_page)
                version = "tfsgate_routing_table_version"
                return bool(pages["after"].get(version) == pages["plane"].get(version))

            wait_for(gateway, caught_up, "the gateway's routing table catching up", 30)
            after, plane = pages["after"], pages["plane"]

    def delta(name: str, **labels: str) -> float:
        return after.get(name, **labels) - before.get(name, **labels)

    ok = dict(protocol="rest", method="predict", model=MODEL, version="123", label="")
    assert delta("tfsgate_requests_total", **ok, code="OK") == 3
    assert delta(":tensorflow:serving:request_count", model_name=MODEL, status="OK") == 3
    calls = after.total("tfsgate_triton_request_duration_seconds_count", model=MODEL)
    assert calls - before.total("tfsgate_triton_request_duration_seconds_count", model=MODEL) == 3
    assert after.get("tfsgate_routing_table_version") == plane.get("tfsgate_routing_table_version")
    assert plane.get("tfsgate_routing_table_version") > 0
    # The control plane leads, knows its embedded Triton and the version it serves.
    assert plane.get("tfsgate_control_plane_leader") == 1
    assert plane.get("tfsgate_triton_ready", triton="embedded") == 1
    assert plane.get("tfsgate_model_versions", model=MODEL, state="AVAILABLE") == 1
    # Each page carries its role's series only.
    assert not after.label_sets("tfsgate_model_versions")
    assert not plane.label_sets("tfsgate_requests_total")


def test_a_gateway_page_before_any_table(tmp_path: Path) -> None:
    """Started before its control plane, a gateway already answers its metrics page."""
    url = f"sqlite:///{tmp_path / 'nowhere' / 'catalog.db'}"
    with running("gateway", tmp_path / "gateway", [f"--database_url={url}"]) as gateway:
        wait_for(gateway, lambda: predict_status(gateway) == 503, "503 without a catalog", 60)
        page = scrape(f"{gateway.rest_url}{PATH}")
        assert page.get("tfsgate_routing_table_version") == 0
        unavailable = dict(protocol="rest", method="predict", model="", version="", label="")
        assert page.get("tfsgate_requests_total", **unavailable, code="UNAVAILABLE") >= 1
