"""``GET /metrics`` on the admin port: the control plane's series, without a token."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from control_plane import metrics
from control_plane.triton.repository import RepositoryError
from tests.support.admin import MODEL, AdminEnv, copy_version


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_control_plane_series_without_a_token(sqlite_admin: AdminEnv) -> None:
    metrics.leading(True)
    response = httpx.get(f"{sqlite_admin.url}/metrics", timeout=30)  # no Authorization header
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    def get(name: str, **labels: str) -> float | None:
        return found.get((name, frozenset(labels.items())))

    assert get("tfsgate_control_plane_leader") == 1
    # The fixture serves versions 1 and 2 of its model (policy all).
    assert get("tfsgate_model_versions", model=MODEL, state="AVAILABLE") == 2
    assert get("tfsgate_model_versions", model=MODEL, state="FAILED") == 0
    generation = sqlite_admin.router.table.generation
    assert get("tfsgate_routing_table_version") == generation > 0
    assert (get("tfsgate_reconcile_duration_seconds_count", triton="in-memory") or 0) >= 1
    converted = sum(
        v for (name, _), v in found.items() if name == "tfsgate_conversion_duration_seconds_count"
    )
    assert converted >= 2
    # Only the control plane's own series: the gateway's are on its REST port.
    assert not any(name.startswith("tfsgate_requests") for name, _ in found)


def test_a_failed_load_counts_as_a_reconcile_failure_of_its_model(
    sqlite_admin: AdminEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failures() -> float:
        text = httpx.get(f"{sqlite_admin.url}/metrics", timeout=30).text
        key = (
            "tfsgate_reconcile_failures_total",
            frozenset({"model": MODEL, "triton": "in-memory"}.items()),
        )
        return samples(text).get(key, 0.0)

    before = failures()

    async def refuse(name: str, config: object = None) -> None:
        raise RepositoryError("no room for this model")

    monkeypatch.setattr(sqlite_admin.reconciler.repository, "load", refuse)
    staged = copy_version(sqlite_admin.saved_model, sqlite_admin.roots, 3)
    with sqlite_admin.client() as client:  # the import reconciles; the load of version 3 fails
        client.post(f"/models/{MODEL}/versions", json={"source_path": str(staged)})
    assert failures() == before + 1
