"""The engine's catalog fields on SQLite and PostgreSQL: a model's runner setting and response
cache, a version's runner evidence per signature and its warm-up record, each change one event."""

from __future__ import annotations

import pytest

from control_plane.catalog import CatalogError, CatalogStore
from control_plane.catalog.entities import Action, Runner
from tfsgate.core.status import Code

ACTOR = "tester"
LATEST = {"latest": {"num_versions": 1}}
EVIDENCE = {
    "serving_default": {
        "runner": "onnxruntime",
        "max_abs_error": 0.0,
        "fallback_reason": "",
        "parity_cases": 9,
    },
    "scalar": {
        "runner": "tensorflow",
        "max_abs_error": None,
        "fallback_reason": "parity check failed: ...",
        "parity_cases": 1,
    },
}


def test_model_defaults_and_updates(store: CatalogStore) -> None:
    model = store.create_model("m", "/models/m", LATEST, ACTOR)
    assert model.runner is Runner.AUTO and model.response_cache is False
    updated = store.update_model("m", actor=ACTOR, runner="tensorflow", response_cache=True)
    assert updated.runner is Runner.TENSORFLOW and updated.response_cache is True
    event = store.list_events(model="m")[-1]
    assert event.action == Action.UPDATE_MODEL
    assert event.before is not None and event.after is not None
    assert (event.before["runner"], event.after["runner"]) == ("auto", "tensorflow")
    assert store.get_model("m").runner is Runner.TENSORFLOW


def test_unknown_runner_is_refused(store: CatalogStore) -> None:
    store.create_model("m", "/models/m", LATEST, ACTOR)
    with pytest.raises(CatalogError) as caught:
        store.update_model("m", actor=ACTOR, runner="pytorch")
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert store.get_model("m").runner is Runner.AUTO


def test_version_runners_and_warmup(store: CatalogStore) -> None:
    store.create_model("m", "/models/m", LATEST, ACTOR)
    created = store.create_model_version("m", 1, "/models/m/1", "c", {}, ACTOR, runners=EVIDENCE)
    assert created.runners == EVIDENCE
    assert created.warmup_records is None and created.warmup_seconds is None
    changed = {**EVIDENCE, "scalar": {**EVIDENCE["scalar"], "runner": "onnxruntime"}}
    assert store.set_model_version_runners("m", 1, changed, ACTOR).runners == changed
    warmed = store.set_model_version_warmup("m", 1, 12, 0.25, ACTOR)
    assert (warmed.warmup_records, warmed.warmup_seconds) == (12, 0.25)
    assert store.get_model_version("m", 1).runners == changed
    actions = [e.action for e in store.list_events(model="m")]
    assert actions[-2:] == [Action.SET_MODEL_VERSION_RUNNERS, Action.SET_MODEL_VERSION_WARMUP]


def test_unchanged_runners_record_no_event(store: CatalogStore) -> None:
    store.create_model("m", "/models/m", LATEST, ACTOR)
    store.create_model_version("m", 1, "/models/m/1", "c", {}, ACTOR, runners=EVIDENCE)
    count = len(store.list_events(model="m"))
    store.set_model_version_runners("m", 1, EVIDENCE, ACTOR)
    assert len(store.list_events(model="m")) == count


def test_bad_warmup_figures_are_refused(store: CatalogStore) -> None:
    store.create_model("m", "/models/m", LATEST, ACTOR)
    store.create_model_version("m", 1, "/models/m/1", "c", {}, ACTOR)
    with pytest.raises(CatalogError) as caught:
        store.set_model_version_warmup("m", 1, -1, 0.0, ACTOR)
    assert caught.value.code == Code.INVALID_ARGUMENT
