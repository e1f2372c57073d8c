"""CatalogStore behaviour on SQLite and PostgreSQL (every test runs on both)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from control_plane.catalog import (
    Action,
    CatalogError,
    CatalogStore,
    VersionPin,
    VersionState,
)
from tfsgate.core.status import Code
from tfsgate.core.version_policy import VersionPolicy

ACTOR = "tester"
LATEST = {"latest": {"num_versions": 1}}


def _model(store: CatalogStore, name: str = "m", available: tuple[int, ...] = (1, 2, 3)) -> None:
    """A model whose versions in `available` are AVAILABLE (others stay START)."""
    store.create_model(name, f"/models/{name}", LATEST, ACTOR)
    for version in sorted({*available, 9}):
        store.create_model_version(name, version, f"/models/{name}/{version}", "c", {}, ACTOR)
        if version in available:
            store.set_model_version_state(name, version, VersionState.AVAILABLE, actor=ACTOR)


def _code(exc_info: pytest.ExceptionInfo[CatalogError]) -> Code:
    return exc_info.value.code


def _actions(store: CatalogStore, model: str = "m") -> list[str]:
    return [event.action for event in store.list_events(model=model)]


# ------------------------------------------------------------------ models


def test_create_and_get_model(store: CatalogStore) -> None:
    created = store.create_model("m", "/models/m", {"all": {}}, ACTOR)
    assert created == store.get_model("m")
    assert created.policy == VersionPolicy.all()
    assert created.platform == "tensorflow"
    assert created.created_at.tzinfo is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        created.name = "x"  # type: ignore[misc]


def test_create_existing_model_is_already_exists(store: CatalogStore) -> None:
    store.create_model("m", "/a", LATEST, ACTOR)
    with pytest.raises(CatalogError) as exc_info:
        store.create_model("m", "/b", LATEST, ACTOR)
    assert _code(exc_info) == Code.ALREADY_EXISTS
    assert _actions(store) == [Action.CREATE_MODEL]


def test_get_or_create_model_returns_existing_unchanged(store: CatalogStore) -> None:
    first, created = store.get_or_create_model("m", "/a", LATEST, ACTOR)
    again, created_again = store.get_or_create_model("m", "/b", {"all": {}}, ACTOR)
    assert (created, created_again) == (True, False)
    assert again == first
    assert _actions(store) == [Action.CREATE_MODEL]


def test_list_update_delete_model(store: CatalogStore) -> None:
    store.create_model("b", "/b", LATEST, ACTOR)
    _model(store, "a")
    store.set_model_version_label("a", "canary", 2, ACTOR)
    store.rollouts.set_traffic_split("a", {"1": 1.0, "2": 1.0}, ACTOR)
    assert [m.name for m in store.list_models()] == ["a", "b"]

    updated = store.update_model("b", actor=ACTOR, policy={"specific": {"versions": ["2", 1]}})
    assert updated.policy == VersionPolicy.specific([1, 2])
    assert updated.base_path == "/b"
    store.update_model("b", actor=ACTOR, policy=updated.policy)  # no change, no event
    assert _actions(store, "b") == [Action.CREATE_MODEL, Action.UPDATE_MODEL]

    store.delete_model("a", ACTOR)
    with pytest.raises(CatalogError) as exc_info:
        store.get_model("a")
    assert _code(exc_info) == Code.NOT_FOUND
    last = store.list_events(model="a")[-1]
    assert last.action == Action.DELETE_MODEL and last.after is None
    assert last.before is not None and last.before["labels"] == {"canary": 2}
    store.create_model("a", "/a2", LATEST, ACTOR)  # versions, labels, traffic went with it
    assert store.list_model_versions("a") == [] and store.get_traffic("a") == {}


@pytest.mark.parametrize(
    "policy",
    [{}, {"latest": {"num_versions": 0}}, {"specific": {"versions": []}}, {"newest": {}}, "[1]"],
)
def test_invalid_policy_is_invalid_argument(store: CatalogStore, policy: object) -> None:
    with pytest.raises(CatalogError) as exc_info:
        store.create_model("m", "/m", policy, ACTOR)  # type: ignore[arg-type]
    assert _code(exc_info) == Code.INVALID_ARGUMENT


def test_missing_model_is_not_found(store: CatalogStore) -> None:
    for call in (
        lambda: store.get_model("nope"),
        lambda: store.list_model_versions("nope"),
        lambda: store.delete_model("nope", ACTOR),
        lambda: store.promote("nope", 1, ACTOR),
    ):
        with pytest.raises(CatalogError) as exc_info:
            call()
        assert _code(exc_info) == Code.NOT_FOUND


# ------------------------------------------------------------------ versions


def test_versions_and_states(store: CatalogStore) -> None:
    store.create_model("m", "/m", LATEST, ACTOR)
    sigs = {"serving_default": {"inputs": {"x": {"dtype": "DT_FLOAT", "shape": [-1, 3]}}}}
    created = store.create_model_version("m", 2, "/m/2", "sha256:ab", sigs, ACTOR)
    store.create_model_version("m", 1, "/m/1", "", {}, ACTOR)
    assert created.state == VersionState.START and created.signatures == sigs
    failed = store.set_model_version_state("m", 1, "FAILED", "out of memory", actor=ACTOR)
    assert (failed.state, failed.state_reason) == (VersionState.FAILED, "out of memory")
    assert store.get_model_version("m", 1) == failed
    assert [v.version for v in store.list_model_versions("m")] == [1, 2]
    assert [v.version for v in store.list_model_versions("m", states=["START"])] == [2]
    store.set_model_version_state("m", 1, "FAILED", "out of memory", actor=ACTOR)  # no-op
    assert _actions(store).count(Action.SET_MODEL_VERSION_STATE) == 1


def test_duplicate_or_invalid_version(store: CatalogStore) -> None:
    store.create_model("m", "/m", LATEST, ACTOR)
    store.create_model_version("m", 1, "/m/1", "", {}, ACTOR)
    cases = [
        (lambda: store.create_model_version("m", 1, "/x", "", {}, ACTOR), Code.ALREADY_EXISTS),
        (lambda: store.create_model_version("m", -1, "/x", "", {}, ACTOR), Code.INVALID_ARGUMENT),
        (
            lambda: store.create_model_version("m", 5, "/x", "", {"f": {1}}, ACTOR),
            Code.INVALID_ARGUMENT,
        ),
        (
            lambda: store.set_model_version_state("m", 1, "READY", actor=ACTOR),
            Code.INVALID_ARGUMENT,
        ),
        (lambda: store.get_model_version("m", 7), Code.NOT_FOUND),
    ]
    for call, code in cases:
        with pytest.raises(CatalogError) as exc_info:
            call()
        assert _code(exc_info) == code
    assert _actions(store) == [Action.CREATE_MODEL, Action.CREATE_MODEL_VERSION]


# ------------------------------------------------------------------ labels


def test_label_needs_available_version(store: CatalogStore) -> None:
    _model(store, available=(1, 2))
    store.set_model_version_label("m", "canary", 2, ACTOR)
    assert store.get_model_version_by_label("m", "canary").version == 2
    with pytest.raises(CatalogError) as exc_info:
        store.set_model_version_label("m", "beta", 9, ACTOR)
    assert _code(exc_info) == Code.FAILED_PRECONDITION
    assert "not AVAILABLE" in exc_info.value.message


def test_allow_unavailable_only_for_new_labels(store: CatalogStore) -> None:
    _model(store, available=(1,))
    store.set_model_version_label("m", "next", 9, ACTOR, allow_unavailable=True)
    store.set_model_version_label("m", "prod", 1, ACTOR)
    with pytest.raises(CatalogError) as exc_info:
        store.set_model_version_label("m", "prod", 9, ACTOR, allow_unavailable=True)
    assert _code(exc_info) == Code.FAILED_PRECONDITION
    assert store.list_labels("m") == {"next": 9, "prod": 1}


def test_label_move_delete_and_missing(store: CatalogStore) -> None:
    _model(store)
    store.set_model_version_label("m", "canary", 1, ACTOR)
    store.set_model_version_label("m", "canary", 2, ACTOR)
    store.set_model_version_label("m", "canary", 2, ACTOR)  # no-op, no event
    moved = store.list_events(model="m")[-1]
    assert (moved.before, moved.after) == (
        {"label": "canary", "version": 1},
        {"label": "canary", "version": 2},
    )
    store.delete_model_version_label("m", "canary", ACTOR)
    assert store.list_labels("m") == {}
    for call, code in [
        (lambda: store.get_model_version_by_label("m", "canary"), Code.NOT_FOUND),
        (lambda: store.delete_model_version_label("m", "canary", ACTOR), Code.NOT_FOUND),
        (lambda: store.set_model_version_label("m", "canary", 42, ACTOR), Code.NOT_FOUND),
        (lambda: store.set_model_version_label("m", "", 1, ACTOR), Code.INVALID_ARGUMENT),
    ]:
        with pytest.raises(CatalogError) as exc_info:
            call()
        assert _code(exc_info) == code
    assert _actions(store).count(Action.SET_MODEL_VERSION_LABEL) == 2


# ------------------------------------------------------------------ promote / rollback


def test_promote_then_rollback(store: CatalogStore) -> None:
    _model(store)
    store.promote("m", 1, ACTOR)
    promoted = store.promote("m", 2, "alice")
    assert (promoted.version.version, promoted.previous_stable) == (2, 1)
    assert store.list_labels("m") == {"previous_stable": 1, "stable": 2}
    events = len(store.list_events(model="m"))
    again = store.promote("m", 2, "carol")  # the stable already: nothing moves or is recorded
    assert (again.version.version, again.previous_stable) == (2, 1)
    assert len(store.list_events(model="m")) == events

    rolled_back = store.rollback("m", "bob")
    assert (rolled_back.version.version, rolled_back.previous_stable) == (1, None)
    assert store.list_labels("m") == {"stable": 1}
    promote_event, rollback_event = store.list_events(model="m")[-2:]
    assert (promote_event.action, promote_event.actor) == (Action.PROMOTE, "alice")
    assert promote_event.before == {"stable": 1, "previous_stable": None}
    assert promote_event.after == {"stable": 2, "previous_stable": 1}
    assert (rollback_event.action, rollback_event.actor) == (Action.ROLLBACK, "bob")
    assert rollback_event.before == promote_event.after
    assert rollback_event.after == {"stable": 1, "previous_stable": None}


def test_rollback_without_previous_is_failed_precondition(store: CatalogStore) -> None:
    _model(store)
    for _ in range(2):
        with pytest.raises(CatalogError) as exc_info:
            store.rollback("m", ACTOR)
        assert _code(exc_info) == Code.FAILED_PRECONDITION
        store.promote("m", 1, ACTOR)
    assert Action.ROLLBACK not in _actions(store)


def test_promote_unavailable_is_failed_precondition(store: CatalogStore) -> None:
    _model(store, available=(1,))
    with pytest.raises(CatalogError) as exc_info:
        store.promote("m", 9, ACTOR)
    assert _code(exc_info) == Code.FAILED_PRECONDITION
    assert store.list_labels("m") == {}


def test_rollback_to_unavailable_is_refused(store: CatalogStore) -> None:
    _model(store)
    store.promote("m", 1, ACTOR)
    store.promote("m", 2, ACTOR)
    store.set_model_version_state("m", 1, VersionState.END, actor=ACTOR)
    with pytest.raises(CatalogError) as exc_info:
        store.rollback("m", ACTOR)
    assert _code(exc_info) == Code.FAILED_PRECONDITION
    assert store.list_labels("m") == {"previous_stable": 1, "stable": 2}


def test_promote_with_stale_expectation_is_aborted(store: CatalogStore) -> None:
    _model(store)
    store.promote("m", 1, ACTOR, expected_stable=None)
    with pytest.raises(CatalogError) as exc_info:
        store.promote("m", 3, ACTOR, expected_stable=2)
    assert _code(exc_info) == Code.ABORTED
    assert "stable is 1" in exc_info.value.message
    store.promote("m", 3, ACTOR, expected_stable=1)
    assert store.get_model_version_by_label("m", "stable").version == 3


# ------------------------------------------------------------------ traffic


def test_traffic_split(store: CatalogStore) -> None:
    _model(store)
    split = store.rollouts
    assert split.get_traffic_split("m") == {}
    assert split.set_traffic_split("m", {"1": 9, "2": 1}, ACTOR) == {"1": 9.0, "2": 1.0}
    split.set_traffic_split("m", {"2": 1.0, "1": 9.0}, ACTOR)  # same split, no event
    assert split.get_traffic_split("m") == {"1": 9.0, "2": 1.0}
    split.set_traffic_split("m", {}, ACTOR)
    assert split.get_traffic_split("m") == {}
    events = [e for e in store.list_events(model="m") if e.action == Action.SET_TRAFFIC]
    assert [e.after for e in events] == [{"weights": {"1": 9.0, "2": 1.0}}, {"weights": {}}]


@pytest.mark.parametrize(
    ("weights", "code"),
    [
        ({"1": -1.0}, Code.INVALID_ARGUMENT),
        ({"1": 0.0}, Code.INVALID_ARGUMENT),
        ({"1": float("nan")}, Code.INVALID_ARGUMENT),
        ({"1": 1.0, "42": 1.0}, Code.NOT_FOUND),
        ({"1": 1.0, "9": 1.0}, Code.FAILED_PRECONDITION),
    ],
)
def test_invalid_traffic_changes_nothing(
    store: CatalogStore, weights: dict[str, float], code: str
) -> None:
    _model(store)
    store.rollouts.set_traffic_split("m", {"1": 1.0}, ACTOR)
    before = store.list_events(model="m")
    with pytest.raises(CatalogError) as exc_info:
        store.rollouts.set_traffic_split("m", weights, ACTOR)
    assert _code(exc_info) == code
    assert store.rollouts.get_traffic_split("m") == {"1": 1.0}
    assert store.list_events(model="m") == before


# ------------------------------------------------------------------ events


def test_every_mutation_records_one_event(store: CatalogStore) -> None:
    _model(store, available=(1, 2))
    store.promote("m", 1, ACTOR)
    events = store.list_events(model="m")
    assert [e.action for e in events] == [
        Action.CREATE_MODEL,
        Action.CREATE_MODEL_VERSION,
        Action.SET_MODEL_VERSION_STATE,
        Action.CREATE_MODEL_VERSION,
        Action.SET_MODEL_VERSION_STATE,
        Action.CREATE_MODEL_VERSION,
        Action.PROMOTE,
    ]
    assert all(e.actor == ACTOR and e.model == "m" for e in events)
    assert [e.id for e in events] == sorted(e.id for e in events)


def test_list_events_filters(store: CatalogStore) -> None:
    store.create_model("a", "/a", LATEST, ACTOR)
    store.create_model("b", "/b", LATEST, ACTOR)
    everything = store.list_events()
    assert [e.model for e in everything] == ["a", "b"]
    assert [e.model for e in store.list_events(model="b")] == ["b"]
    assert store.list_events(limit=1) == everything[:1]
    assert store.list_events(since=everything[1].time) == everything[1:]
    assert store.list_events(until=everything[1].time) == everything[:1]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert store.list_events(since=later) == []
    with pytest.raises(CatalogError) as exc_info:
        store.list_events(limit=0)
    assert _code(exc_info) == Code.INVALID_ARGUMENT


def test_blank_actor_is_rejected(store: CatalogStore) -> None:
    with pytest.raises(CatalogError) as exc_info:
        store.create_model("m", "/m", LATEST, " ")
    assert _code(exc_info) == Code.INVALID_ARGUMENT
    assert store.list_events() == []


def test_list_pins_reads_every_models_pinned_versions(store: CatalogStore) -> None:
    """The reconciler's pass reads all pins at once (list_pins), as each model's versions say."""
    _model(store, "a")
    _model(store, "b")
    _model(store, "c")
    store.set_model_version_pin("a", 1, VersionPin.LOAD, ACTOR)
    store.set_model_version_pin("a", 3, VersionPin.UNLOAD, ACTOR)
    store.set_model_version_pin("c", 2, "load", ACTOR)
    store.set_model_version_pin("c", 2, None, ACTOR)  # back to the policy
    store.set_model_version_pin("c", 9, VersionPin.UNLOAD, ACTOR)
    pins = store.list_pins()
    assert pins == {"a": {1: VersionPin.LOAD, 3: VersionPin.UNLOAD}, "c": {9: VersionPin.UNLOAD}}
    for name in ("a", "b", "c"):
        pinned = {v.version: v.pin for v in store.list_model_versions(name) if v.pin}
        assert pins.get(name, {}) == pinned
