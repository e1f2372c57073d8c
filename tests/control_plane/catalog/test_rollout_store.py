"""The catalog's rollout and quality verbs on SQLite and PostgreSQL (every test runs on both)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from control_plane.catalog import CatalogError, CatalogStore, VersionState
from tfsgate.core.status import Code

ACTOR = "tester"


@dataclass(frozen=True)
class Record:
    model: str
    version: int
    request_id: str
    rows: list[Any]

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "output": "y"}


def _model(store: CatalogStore, name: str = "m") -> None:
    store.create_model(name, f"/models/{name}", {"all": {}}, ACTOR)
    for version in (1, 2, 3):
        store.create_model_version(name, version, f"/models/{name}/{version}", "c", {}, ACTOR)
        if version != 3:
            store.set_model_version_state(name, version, VersionState.AVAILABLE, actor=ACTOR)


def _actions(store: CatalogStore) -> list[str]:
    return [e.action for e in store.list_events(model="m")]


def test_traffic_over_labels_and_versions(store: CatalogStore) -> None:
    _model(store)
    store.promote("m", 1, ACTOR)
    store.set_model_version_label("m", "canary", 2, ACTOR)
    split = store.rollouts.set_traffic_split("m", {"stable": 90, "canary": 10}, ACTOR)
    assert split == {"stable": 90.0, "canary": 10.0}
    assert store.rollouts.effective_traffic("m") == {1: 90.0, 2: 10.0}
    store.promote("m", 2, ACTOR)  # labels move, weights follow
    assert store.rollouts.effective_traffic("m") == {2: 100.0}
    store.rollouts.set_traffic_split("m", {"1": 50, "canary": 50}, ACTOR)
    assert store.rollouts.get_traffic_split("m") == {"1": 50.0, "canary": 50.0}
    assert _actions(store).count("set_traffic") == 2
    for bad, code in (
        ({"nolabel": 1}, Code.FAILED_PRECONDITION),
        ({"3": 1}, Code.FAILED_PRECONDITION),  # not AVAILABLE
        ({"1": -1}, Code.INVALID_ARGUMENT),
        ({"1": 0}, Code.INVALID_ARGUMENT),
    ):
        with pytest.raises(CatalogError) as exc_info:
            store.rollouts.set_traffic_split("m", bad, ACTOR)
        assert exc_info.value.code == code
    assert store.rollouts.get_traffic_split("m") == {"1": 50.0, "canary": 50.0}


def test_shadow_set_change_clear(store: CatalogStore) -> None:
    _model(store)
    assert store.rollouts.get_shadow("m") is None
    store.rollouts.set_shadow("m", 2, 5.0, 0.01, ACTOR)
    shadow = store.rollouts.get_shadow("m")
    assert shadow is not None and (shadow.version, shadow.percent) == (2, 5.0)
    store.rollouts.set_shadow("m", 2, 5.0, 0.01, ACTOR)  # unchanged: no event
    store.rollouts.set_shadow("m", None, 0.0, 0.0, ACTOR)
    assert store.rollouts.get_shadow("m") is None
    assert _actions(store).count("set_shadow") == 2
    with pytest.raises(CatalogError):
        store.rollouts.set_shadow("m", 2, 150.0, 0.0, ACTOR)


def test_route_state_is_one_transaction_matching_the_separate_reads(store: CatalogStore) -> None:
    """What the publisher routes by, read in one transaction (one snapshot) instead of four."""
    _model(store)
    store.promote("m", 1, ACTOR)
    store.set_model_version_label("m", "canary", 2, ACTOR)
    store.rollouts.set_traffic_split("m", {"stable": 90, "canary": 10}, ACTOR)
    store.rollouts.set_shadow("m", 2, 5.0, 0.01, ACTOR)
    begins: list[object] = []

    def begun(connection: object) -> None:
        begins.append(connection)

    event.listen(store.engine, "begin", begun)
    try:
        state = store.rollouts.route_state("m")
    finally:
        event.remove(store.engine, "begin", begun)
    assert len(begins) == 1
    assert list(state.versions) == store.list_model_versions("m")
    assert state.labels == store.list_labels("m") == {"canary": 2, "stable": 1}
    assert state.traffic == store.rollouts.effective_traffic("m") == {1: 90.0, 2: 10.0}
    assert state.shadow == store.rollouts.get_shadow("m")
    assert state.shadow is not None and state.shadow.version == 2
    with pytest.raises(CatalogError) as exc_info:
        store.rollouts.route_state("absent")
    assert exc_info.value.code == Code.NOT_FOUND


def test_rollout_start_step_complete(store: CatalogStore) -> None:
    _model(store)
    with pytest.raises(CatalogError) as exc_info:
        store.rollouts.start_rollout("m", 2, [10, 100], 60, ACTOR)  # no stable yet
    assert exc_info.value.code == Code.FAILED_PRECONDITION
    store.promote("m", 1, ACTOR)
    started = store.rollouts.start_rollout("m", 2, [10, 100], 60, ACTOR)
    assert (started.state, started.weight, started.baseline) == ("running", 10, 1)
    assert store.rollouts.effective_traffic("m") == {1: 90.0, 2: 10.0}
    with pytest.raises(CatalogError):
        store.rollouts.start_rollout("m", 2, [10], 60, ACTOR)  # one running per model
    stepped = store.rollouts.advance_rollout("m", started.id, "step", ACTOR, {"x": 1})
    assert stepped.weight == 100
    assert store.rollouts.effective_traffic("m") == {1: 0.0, 2: 100.0}
    done = store.rollouts.advance_rollout("m", started.id, "complete", ACTOR)
    assert done.state == "completed" and done.finished_at is not None
    assert store.list_labels("m") == {"stable": 2, "previous_stable": 1}
    assert store.rollouts.get_traffic_split("m") == {"stable": 100.0}
    assert store.rollouts.running_rollouts() == []
    events = store.list_events(model="m")
    step = [e for e in events if e.action == "rollout_step"][0]
    assert step.after is not None and step.after["figures"] == {"x": 1}
    assert [e.action for e in events if e.action.startswith("rollout")] == [
        "rollout_start",
        "rollout_step",
        "rollout_complete",
    ]


def test_rollback_zeroes_the_candidate_and_refuses_a_second_move(store: CatalogStore) -> None:
    _model(store)
    store.promote("m", 1, ACTOR)
    started = store.rollouts.start_rollout("m", 2, [25, 100], 60, ACTOR)
    figures = {"reason": "error rate", "candidate": {"errors": 9}}
    rolled = store.rollouts.advance_rollout(
        "m", started.id, "rollback", ACTOR, figures, "error rate"
    )
    assert (rolled.state, rolled.weight, rolled.reason) == ("rolled_back", 0, "error rate")
    assert store.rollouts.effective_traffic("m") == {1: 100.0, 2: 0.0}
    with pytest.raises(CatalogError) as exc_info:
        store.rollouts.advance_rollout("m", started.id, "abort", ACTOR)
    assert exc_info.value.code == Code.FAILED_PRECONDITION
    latest = store.rollouts.latest_rollout("m")
    assert latest is not None and latest.state == "rolled_back"


def test_predictions_and_feedback_join_per_version(store: CatalogStore) -> None:
    _model(store)
    records = [Record("m", 1, "a", [0.9]), Record("m", 2, "a", [0.4]), Record("m", 1, "b", [0.2])]
    assert store.rollouts.record_predictions(records) == 3
    store.rollouts.record_predictions(records[:1])  # a retried batch is ignored, not an error
    store.rollouts.record_predictions([Record("unknown", 1, "z", [1.0])])
    assert store.rollouts.add_feedback("m", [("a", 1), ("b", 0), ("c", 1)]) == (2, 1)
    store.rollouts.add_feedback("m", [("a", 0)])  # a later value replaces the earlier one
    pairs = {
        v: sorted((p["rows"][0], t) for p, t in joined)
        for v, joined in store.rollouts.feedback_pairs("m").items()
    }
    assert pairs == {1: [(0.2, 0), (0.9, 0)], 2: [(0.4, 0)]}
    later = datetime.now(UTC) + timedelta(hours=1)
    assert store.rollouts.feedback_pairs("m", since=later) == {}
    store.rollouts.prune_predictions(later)
    assert store.rollouts.feedback_pairs("m") == {}


def test_thresholds_round_trip(store: CatalogStore) -> None:
    _model(store)
    assert store.rollouts.get_thresholds("m") == {}
    store.rollouts.set_thresholds("m", {"window_seconds": 30.0}, ACTOR)
    assert store.rollouts.get_thresholds("m") == {"window_seconds": 30.0}
    assert _actions(store).count("set_thresholds") == 1
