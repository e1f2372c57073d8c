"""Publishing after one model's change reads only that model again, and gives the table a full
build from the catalog gives (real catalogs: SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import event

from control_plane.catalog import CatalogStore, VersionState
from control_plane.reconciler.publish import CatalogFeed, Publisher
from control_plane.sources.model_config import ModelSpecConfig
from tfsgate.core.routing_table import RoutingTable

ACTOR = "tester"
NAMES = ("a", "b", "c")


def _catalog(store: CatalogStore) -> None:
    for name in NAMES:
        store.create_model(name, f"/models/{name}", {"all": {}}, ACTOR)
        for version in (1, 2):
            store.create_model_version(name, version, f"/models/{name}/{version}", "c", {}, ACTOR)
            store.set_model_version_state(name, version, VersionState.AVAILABLE, actor=ACTOR)


def _publisher(store: CatalogStore, served: dict[str, ModelSpecConfig]) -> Publisher:
    return Publisher(store, None, lambda: served, max_batch_size=8)


def _models(table: RoutingTable) -> dict[str, object]:
    return {name: route.to_json() for name, route in table.models.items()}


def test_one_model_publish_equals_a_full_build(catalog_url: str) -> None:
    store = CatalogStore.from_url(catalog_url)
    try:
        _catalog(store)
        served = {n: ModelSpecConfig(n, Path(f"/models/{n}")) for n in NAMES}
        partial, full = _publisher(store, served), _publisher(store, served)

        async def both(model: str) -> tuple[RoutingTable, RoutingTable]:
            return await partial.publish(model), await full.publish()

        async def steps() -> None:
            await partial.publish()  # the first table is always a full one
            changes = [
                ("a", lambda: store.promote("a", 1, ACTOR)),
                ("a", lambda: store.promote("a", 2, ACTOR)),
                ("b", lambda: store.set_model_version_label("b", "canary", 2, ACTOR, False)),
                ("b", lambda: store.rollouts.set_traffic_split("b", {"1": 90, "2": 10}, ACTOR)),
                ("c", lambda: store.rollouts.set_shadow("c", 2, 10.0, 1e-6, ACTOR)),
                ("a", lambda: store.rollback("a", ACTOR)),
                ("c", lambda: store.promote("c", 1, ACTOR)),
            ]
            for model, change in changes:
                change()
                one, every = await both(model)
                assert _models(one) == _models(every), model
                assert list(one.models) == list(every.models)
            # A rollout (its service publishes the whole table) guards c; later one-model
            # publishes keep c as it was.
            store.rollouts.start_rollout("c", 2, [10, 50], 60.0, ACTOR)
            await partial.publish()
            one, every = await both("a")
            assert _models(one) == _models(every)
            assert one.models["c"].guarded
            # What it costs: statements sent to the catalog for one model's publish against a
            # full build of the three.
            statements: list[str] = []
            event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
            await partial.publish("a")
            one_model, statements[:] = len(statements), []
            await full.publish()
            assert one_model * 2 < len(statements), (one_model, len(statements))
            # A model no longer served leaves the table with the next publish.
            del served["c"]
            one, every = await both("a")
            assert set(one.models) == set(every.models) == {"a", "b"}

        asyncio.run(steps())
    finally:
        store.close()


class _Sink:
    def __init__(self) -> None:
        self.tables: list[RoutingTable] = []

    def publish(self, table: RoutingTable) -> None:
        self.tables.append(table)


def test_an_equal_table_is_handed_out_again_only_for_new_triton_urls(catalog_url: str) -> None:
    """A publish that finds the table unchanged keeps the last one (no new version for gateways
    to swap in), unless the feed's Triton instances changed since its last write: a restarted
    embedded Triton reloads every version to the same states, and its new ports must still
    reach gateways in other processes."""
    store = CatalogStore.from_url(catalog_url)
    try:
        _catalog(store)
        served = {n: ModelSpecConfig(n, Path(f"/models/{n}")) for n in NAMES}
        urls = ["http://127.0.0.1:1"]
        feed = CatalogFeed(store, lambda: tuple(urls))
        sink = _Sink()
        publisher = Publisher(store, sink, lambda: served, max_batch_size=8, feed=feed)
        written: list[int] = []
        event.listen(
            store.engine,
            "before_cursor_execute",
            lambda *a: written.append(1) if a[2].lstrip().upper().startswith("INSERT") else None,
        )

        async def steps() -> None:
            first = await publisher.publish()
            assert await publisher.publish() is first
            assert await publisher.publish("a") is first
            assert len(sink.tables) == 1
            inserts = len(written)
            store.promote("a", 1, ACTOR)
            changed = await publisher.publish("a")
            assert changed.generation == first.generation + 1
            assert changed.models["a"] != first.models["a"]
            assert len(sink.tables) == 2 and len(written) > inserts
            urls[0] = "http://127.0.0.1:2"  # Triton restarted on new ports; same states
            again = await publisher.publish()
            assert again.generation == changed.generation + 1
            assert again.models == changed.models
            assert len(sink.tables) == 3
            assert await publisher.publish() is again

        asyncio.run(steps())
    finally:
        store.close()


def test_a_failed_feed_write_still_publishes_in_process_and_is_written_by_the_next_publish(
    catalog_url: str,
) -> None:
    """The table is built and written to the feed in one thread hop; a write that fails (the
    catalog refusing it) is raised after this process's gateway has the table, and the next
    publish writes it, though nothing changed since and an earlier write carried the same
    Triton instances."""
    store = CatalogStore.from_url(catalog_url)
    try:
        _catalog(store)
        served = {n: ModelSpecConfig(n, Path(f"/models/{n}")) for n in NAMES}
        feed, sink = CatalogFeed(store, lambda: ("http://127.0.0.1:1",)), _Sink()
        publisher = Publisher(store, sink, lambda: served, max_batch_size=8, feed=feed)
        broken = [False]

        def refuse(*args: object) -> None:
            if broken[0] and str(args[2]).startswith("UPDATE routing_state"):
                raise RuntimeError("catalog unavailable")

        event.listen(store.engine, "before_cursor_execute", refuse)

        def fed() -> dict[str, object]:
            with store.engine.connect() as connection:
                payload = connection.exec_driver_sql(
                    "SELECT payload FROM routing_state"
                ).scalar_one()
            return {m["name"]: m["labels"] for m in json.loads(payload)["table"]["models"]}

        async def steps() -> None:
            await publisher.publish()
            assert fed()["a"] == {}
            store.promote("a", 1, ACTOR)
            broken[0] = True
            with pytest.raises(RuntimeError, match="catalog unavailable"):
                await publisher.publish("a")
            assert sink.tables[-1].models["a"].labels == {"stable": 1}
            assert fed()["a"] == {}
            broken[0] = False
            again = await publisher.publish("a")  # unchanged, but the feed never took it
            assert again.models["a"].labels == {"stable": 1}
            assert fed()["a"] == {"stable": 1}
            assert await publisher.publish("a") is again  # now nothing to hand out

        asyncio.run(steps())
    finally:
        store.close()
