"""The admin API's main flows, on SQLite and PostgreSQL: auth, promote/rollback, races."""

from __future__ import annotations

import threading

import httpx

from tests.support.admin import MODEL, AdminEnv


def _stable(env: AdminEnv) -> int | None:
    return env.store.list_labels(MODEL).get("stable")


def test_models_and_versions_with_states(admin: AdminEnv) -> None:
    with admin.client(token=None) as client:  # reads need no token
        models = client.get("/models").json()["models"]
        versions = client.get(f"/models/{MODEL}/versions").json()["versions"]
    assert [(m["name"], m["source"]) for m in models] == [(MODEL, "config")]
    assert [(v["version"], v["state"], v["pin"]) for v in versions] == [
        (1, "AVAILABLE", None),
        (2, "AVAILABLE", None),
    ]


def test_missing_or_wrong_token_is_401_and_changes_nothing(admin: AdminEnv) -> None:
    before = admin.event_count()
    for token in (None, "wrong"):
        with admin.client(token=token) as client:
            response = client.post(f"/models/{MODEL}/promote", json={"version": 2})
        assert response.status_code == 401
        assert response.json() == {"error": "missing or invalid bearer token"}
        assert response.headers["www-authenticate"] == "Bearer"
    assert admin.event_count() == before
    assert _stable(admin) is None


def test_promote_then_rollback(admin: AdminEnv) -> None:
    with admin.client() as client:
        first = client.post(f"/models/{MODEL}/promote", json={"version": 1})
        assert first.json() == {"model": MODEL, "stable": 1, "previous_stable": None}
        before = admin.event_count()
        promoted = client.post(f"/models/{MODEL}/promote", json={"version": 2})
        assert promoted.status_code == 200
        assert promoted.json() == {"model": MODEL, "stable": 2, "previous_stable": 1}
        assert admin.router.table.models[MODEL].labels["stable"] == 2  # re-published
        rolled = client.post(f"/models/{MODEL}/rollback")
        assert rolled.status_code == 200
        assert rolled.json() == {"model": MODEL, "stable": 1, "previous_stable": None}
        again = client.post(f"/models/{MODEL}/rollback")
    events = admin.store.list_events(MODEL)[-2:]
    assert admin.event_count() == before + 2
    assert [e.action for e in events] == ["promote", "rollback"]
    assert all(e.actor == "admin@127.0.0.1" for e in events)
    assert admin.router.table.models[MODEL].labels["stable"] == 1
    assert again.status_code == 400  # FAILED_PRECONDITION: nothing to roll back to
    assert "no previous stable version" in again.json()["error"]


def test_concurrent_promotes_serialize_and_the_loser_gets_409(admin: AdminEnv) -> None:
    start = threading.Barrier(2)
    responses: dict[int, httpx.Response] = {}

    def promote(version: int) -> None:
        with admin.client() as client:
            start.wait()
            body = {"version": version, "expected_stable": None}
            responses[version] = client.post(f"/models/{MODEL}/promote", json=body)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in responses.values())
    assert codes == [200, 409]
    winner = next(v for v, r in responses.items() if r.status_code == 200)
    loser = next(r for r in responses.values() if r.status_code == 409)
    assert loser.json()["current"] == {"model": MODEL, "stable": winner, "previous_stable": None}
    assert "another change won the race" in loser.json()["error"]
    assert _stable(admin) == winner
    assert [e.action for e in admin.store.list_events(MODEL)].count("promote") == 1
