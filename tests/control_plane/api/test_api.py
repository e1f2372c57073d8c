"""The rest of the admin API on SQLite: labels, traffic, roots, register/import, load/unload,
the audit log, errors and OpenAPI."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from control_plane.api import AdminSettings
from tests.support.admin import MODEL, AdminEnv, copy_version


def test_openapi_lists_the_endpoints(sqlite_admin: AdminEnv) -> None:
    with sqlite_admin.client(token=None) as client:
        spec = client.get(f"{sqlite_admin.url}/openapi.json").json()
    paths = {(path, method) for path, item in spec["paths"].items() for method in item}
    prefix = "/v1/admin/models"
    assert {
        (prefix, "get"),
        (prefix, "post"),
        (prefix + "/{model}", "delete"),
        (prefix + "/{model}/versions", "get"),
        (prefix + "/{model}/versions", "post"),
        (prefix + "/{model}/versions/{version}/load", "post"),
        (prefix + "/{model}/versions/{version}/unload", "post"),
        (prefix + "/{model}/labels/{label}", "put"),
        (prefix + "/{model}/labels/{label}", "delete"),
        (prefix + "/{model}/promote", "post"),
        (prefix + "/{model}/rollback", "post"),
        (prefix + "/{model}/traffic", "put"),
        (prefix + "/{model}/traffic", "get"),
        ("/v1/admin/events", "get"),
        # Rollouts and quality (issue 9).
        (prefix + "/{model}/shadow", "get"),
        (prefix + "/{model}/shadow", "put"),
        (prefix + "/{model}/shadow", "delete"),
        (prefix + "/{model}/thresholds", "get"),
        (prefix + "/{model}/thresholds", "put"),
        (prefix + "/{model}/rollout", "post"),
        (prefix + "/{model}/rollout", "get"),
        (prefix + "/{model}/rollout/abort", "post"),
        (prefix + "/{model}/feedback", "post"),
        (prefix + "/{model}/quality", "get"),
    } <= paths
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_set_move_and_delete_labels_republish(sqlite_admin: AdminEnv) -> None:
    with sqlite_admin.client() as client:
        assert client.put(f"/models/{MODEL}/labels/canary", json={"version": 1}).status_code == 200
        moved = client.put(f"/models/{MODEL}/labels/canary", json={"version": 2})
        assert moved.json() == {"model": MODEL, "labels": {"canary": 2}}
        assert sqlite_admin.router.table.models[MODEL].labels == {"canary": 2}
        assert client.delete(f"/models/{MODEL}/labels/canary").status_code == 200
        missing = client.delete(f"/models/{MODEL}/labels/canary")
        reserved = client.put(f"/models/{MODEL}/labels/stable", json={"version": 1})
    assert sqlite_admin.router.table.models[MODEL].labels == {}
    assert missing.status_code == 404
    assert reserved.status_code == 400 and "promote and rollback" in reserved.json()["error"]


def test_label_on_an_unavailable_version_is_refused(sqlite_admin: AdminEnv) -> None:
    sqlite_admin.store.set_model_version_state(MODEL, 1, "END", actor="test")
    before = sqlite_admin.event_count()
    with sqlite_admin.client() as client:
        response = client.put(f"/models/{MODEL}/labels/canary", json={"version": 1})
        promote = client.post(f"/models/{MODEL}/promote", json={"version": 1})
    assert response.status_code == 400
    assert "not AVAILABLE" in response.json()["error"]
    assert promote.status_code == 400
    assert sqlite_admin.event_count() == before


def test_traffic_split(sqlite_admin: AdminEnv) -> None:
    with sqlite_admin.client() as client:
        response = client.put(f"/models/{MODEL}/traffic", json={"weights": {"1": 90, "2": 10}})
        assert response.json() == {"model": MODEL, "weights": {"1": 90.0, "2": 10.0}}
        assert sqlite_admin.router.table.models[MODEL].traffic == {1: 90.0, 2: 10.0}
        assert client.get(f"/models/{MODEL}/traffic").json()["weights"] == {"1": 90.0, "2": 10.0}
        bad = client.put(f"/models/{MODEL}/traffic", json={"weights": {"1": -1}})
        cleared = client.put(f"/models/{MODEL}/traffic", json={"weights": {}})
    assert bad.status_code == 400
    assert cleared.json()["weights"] == {}
    assert sqlite_admin.router.table.models[MODEL].traffic == {}


def test_paths_outside_the_model_roots_are_refused(
    sqlite_admin: AdminEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    copy_version(sqlite_admin.saved_model, outside, 7)
    (sqlite_admin.roots / "link").symlink_to(outside)
    before = sqlite_admin.event_count()
    attempts = [
        str(outside / "7"),
        str(sqlite_admin.roots / "link" / "7"),  # a symlink out of the root
        f"{sqlite_admin.roots}/../../{outside.name}/7",  # .. out of it
    ]
    with sqlite_admin.client() as client:
        for source in attempts:
            response = client.post(f"/models/{MODEL}/versions", json={"source_path": source})
            assert response.status_code == 403, source
            assert "outside the model roots" in response.json()["error"]
        register = client.post("/models", json={"name": "x", "base_path": str(outside)})
        relative = client.post("/models", json={"name": "x", "base_path": "models/x"})
    assert register.status_code == 403
    assert relative.status_code == 400
    assert sqlite_admin.event_count() == before
    assert not (sqlite_admin.base_path / "3").exists()


@pytest.mark.tensorflow  # the registered model converts with the export child
def test_register_a_model_then_import_a_version(sqlite_admin: AdminEnv) -> None:
    base = sqlite_admin.roots / "other"
    copy_version(sqlite_admin.saved_model, base, 1)
    staged = copy_version(sqlite_admin.saved_model, sqlite_admin.roots / "staging", 5)
    with sqlite_admin.client() as client:
        created = client.post("/models", json={"name": "other", "base_path": str(base)})
        assert created.status_code == 201, created.text
        assert created.json()["source"] == "admin"
        assert [v["state"] for v in created.json()["versions"]] == ["AVAILABLE"]
        again = client.post("/models", json={"name": "other", "base_path": str(base)})
        imported = client.post("/models/other/versions", json={"source_path": str(staged)})
        versions = client.get("/models/other/versions").json()["versions"]
    assert again.status_code == 409
    assert imported.status_code == 201, imported.text
    assert imported.json()["version"] == 2  # highest known + 1
    assert (base / "2" / "saved_model.pb").is_file()  # copied into the base path
    # latest-1 policy: the imported version serves, the old one is retired.
    assert [(v["version"], v["state"]) for v in versions] == [(1, "END"), (2, "AVAILABLE")]
    assert "other" in sqlite_admin.router.table.models
    actions = [e.action for e in sqlite_admin.store.list_events("other") if e.actor != "reconciler"]
    assert actions == ["create_model", "create_model_version"]


@pytest.mark.tensorflow  # the registered model converts with the export child
def test_unregister_only_admin_models(sqlite_admin: AdminEnv) -> None:
    base = sqlite_admin.roots / "other"
    copy_version(sqlite_admin.saved_model, base, 1)
    with sqlite_admin.client() as client:
        client.post("/models", json={"name": "other", "base_path": str(base)})
        removed = client.delete("/models/other")
        config = client.delete(f"/models/{MODEL}")
    assert removed.json()["source"] == "retired"
    assert [v["state"] for v in removed.json()["versions"]] == ["END"]
    assert "other" not in sqlite_admin.router.table.models
    assert config.status_code == 400


@pytest.mark.tensorflow  # the registered model converts with the export child
def test_load_and_unload_pin_versions(sqlite_admin: AdminEnv) -> None:
    base = sqlite_admin.roots / "other"
    for version in (1, 2):
        copy_version(sqlite_admin.saved_model, base, version)
    with sqlite_admin.client() as client:
        client.post("/models", json={"name": "other", "base_path": str(base)})  # latest 1
        loaded = client.post("/models/other/versions/1/load")  # on disk, not yet in the catalog
        assert loaded.json()["state"] == "AVAILABLE" and loaded.json()["pin"] == "load"
        client.put("/models/other/labels/canary", json={"version": 2})
        in_use = client.post("/models/other/versions/2/unload")
        client.delete("/models/other/labels/canary")
        unloaded = client.post("/models/other/versions/2/unload")
        unpinned = client.delete("/models/other/versions/2/pin")
        missing = client.post("/models/other/versions/9/load")
    assert in_use.status_code == 400 and "label 'canary'" in in_use.json()["error"]
    assert (unloaded.json()["state"], unloaded.json()["pin"]) == ("END", "unload")
    assert (unpinned.json()["state"], unpinned.json()["pin"]) == ("AVAILABLE", None)
    assert missing.status_code == 404


def test_audit_log_filtered_by_model_and_time(sqlite_admin: AdminEnv) -> None:
    with sqlite_admin.client() as client:
        client.post(f"/models/{MODEL}/promote", json={"version": 1})
        middle = datetime.now(UTC)
        time.sleep(0.01)
        client.post(f"/models/{MODEL}/promote", json={"version": 2})
        mine = client.get("/events", params={"model": MODEL, "since": middle.isoformat()})
        earlier = client.get("/events", params={"model": MODEL, "until": middle.isoformat()})
        naive = (middle - timedelta(hours=1)).replace(tzinfo=None).isoformat()
        limited = client.get("/events", params={"since": naive, "limit": 1})
        other = client.get("/events", params={"model": "nope"})
        bad = client.get("/events", params={"since": "yesterday"})
    assert [(e["action"], e["version"]) for e in mine.json()["events"]] == [("promote", 2)]
    assert ("promote", 1) in [(e["action"], e["version"]) for e in earlier.json()["events"]]
    assert len(limited.json()["events"]) == 1
    assert other.json() == {"events": []}
    assert bad.status_code == 400 and "since" in bad.json()["error"]


def test_errors_are_json(sqlite_admin: AdminEnv) -> None:
    with sqlite_admin.client() as client:
        unknown = client.get("/models/nope")
        bad_body = client.post(f"/models/{MODEL}/promote", json={"version": "two"})
        extra = client.post(f"/models/{MODEL}/promote", json={"version": 1, "force": True})
        no_route = client.get("/nothing")
    assert unknown.status_code == 404 and unknown.json() == {"error": "model 'nope' not found"}
    assert bad_body.status_code == 400 and "body.version" in bad_body.json()["error"]
    assert extra.status_code == 400
    assert no_route.status_code == 404 and "error" in no_route.json()


def test_without_a_token_the_api_binds_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFSGATE_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("TFSGATE_MODEL_ROOTS", os.pathsep.join(["/a", "/b"]))
    settings = AdminSettings(host="0.0.0.0")
    assert settings.bind_host == "127.0.0.1"
    assert [str(p) for p in settings.extra_roots()] == ["/a", "/b"]
    monkeypatch.setenv("TFSGATE_ADMIN_TOKEN", "t")
    assert AdminSettings(host="0.0.0.0").bind_host == "0.0.0.0"
