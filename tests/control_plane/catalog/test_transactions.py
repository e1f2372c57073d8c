"""One transaction or nothing, and serialized concurrent promotes, on both backends."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from control_plane.catalog import Action, CatalogError, CatalogStore, VersionState
from tfsgate.core.status import Code

ACTOR = "tester"

SQLITE_TRIGGER = [
    """CREATE TRIGGER fail_previous_stable BEFORE INSERT ON labels
       WHEN NEW.label = 'previous_stable'
       BEGIN SELECT RAISE(ABORT, 'injected failure'); END""",
]
PG_TRIGGER = [
    """CREATE FUNCTION fail_previous_stable() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = 'check_violation'; END
       $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER fail_previous_stable BEFORE INSERT ON labels FOR EACH ROW
       WHEN (NEW.label = 'previous_stable') EXECUTE FUNCTION fail_previous_stable()""",
]
DROP_TRIGGER = {
    "sqlite": ["DROP TRIGGER fail_previous_stable"],
    "postgresql": [
        "DROP TRIGGER fail_previous_stable ON labels",
        "DROP FUNCTION fail_previous_stable()",
    ],
}


@contextmanager
def failing_previous_stable_insert(store: CatalogStore) -> Iterator[None]:
    """A real database trigger that rejects the second label write of a promote."""
    dialect = store.engine.dialect.name
    with store.engine.begin() as conn:
        for ddl in SQLITE_TRIGGER if dialect == "sqlite" else PG_TRIGGER:
            conn.execute(text(ddl))
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            for ddl in DROP_TRIGGER[dialect]:
                conn.execute(text(ddl))


def _available_model(store: CatalogStore, versions: range) -> None:
    store.create_model("m", "/models/m", {"latest": {"num_versions": 1}}, ACTOR)
    for version in versions:
        store.create_model_version("m", version, f"/models/m/{version}", "", {}, ACTOR)
        store.set_model_version_state("m", version, VersionState.AVAILABLE, actor=ACTOR)


def test_failing_mutation_leaves_no_trace(store: CatalogStore) -> None:
    """The `stable` label is written before the failure; it must be rolled back with the event."""
    _available_model(store, range(1, 3))
    store.promote("m", 1, ACTOR)
    events_before = store.list_events()
    with failing_previous_stable_insert(store), pytest.raises(CatalogError):
        store.promote("m", 2, ACTOR)
    assert store.list_labels("m") == {"stable": 1}
    assert store.list_events() == events_before
    store.promote("m", 2, ACTOR)  # and the store still works afterwards
    assert store.list_labels("m") == {"previous_stable": 1, "stable": 2}


def _race(workers: list[Callable[[], object]]) -> list[object]:
    """Run the callables in threads released together; collect results or CatalogErrors."""
    barrier = threading.Barrier(len(workers))
    results: list[object] = [None] * len(workers)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = workers[index]()
        except CatalogError as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_promotes_one_is_aborted(store: CatalogStore) -> None:
    _available_model(store, range(1, 4))
    store.promote("m", 1, ACTOR)
    results = _race(
        [functools.partial(store.promote, "m", v, "a", expected_stable=1) for v in (2, 3)]
    )
    errors = [r for r in results if isinstance(r, CatalogError)]
    assert len(errors) == 1 and errors[0].code == Code.ABORTED
    winner = store.get_model_version_by_label("m", "stable").version
    assert f"stable is {winner}" in errors[0].message
    assert store.list_labels("m") == {"previous_stable": 1, "stable": winner}
    assert _actions(store).count(Action.PROMOTE) == 2


def test_concurrent_promotes_serialize(store: CatalogStore) -> None:
    """Without expectations every promote succeeds, and each one saw the one before it."""
    _available_model(store, range(1, 7))
    store.promote("m", 1, ACTOR)
    results = _race([functools.partial(store.promote, "m", v, ACTOR) for v in range(2, 7)])
    assert not [r for r in results if isinstance(r, CatalogError)]
    promotes = [e for e in store.list_events(model="m") if e.action == Action.PROMOTE]
    assert len(promotes) == 6
    for earlier, later in zip(promotes, promotes[1:], strict=False):
        assert later.before == earlier.after
    assert store.list_labels("m")["stable"] == promotes[-1].version


def _actions(store: CatalogStore) -> list[str]:
    return [e.action for e in store.list_events(model="m")]
