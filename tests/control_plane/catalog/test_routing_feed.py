"""The routing feed on real catalogs: the publish step's write, a gateway's follower (poll on
SQLite, LISTEN/NOTIFY on PostgreSQL), and a follower started before the catalog exists."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from control_plane.catalog import CatalogStore
from control_plane.reconciler.publish import CatalogFeed
from tests.support.waiting import wait_until
from tfsgate.core import routing_feed
from tfsgate.core.routing_feed import FeedFollower, FeedState
from tfsgate.core.routing_table import ModelRoute, RoutingTable, VersionRoute


def table(generation: int, label_version: int = 1) -> RoutingTable:
    versions = {1: VersionRoute(1, "AVAILABLE"), 2: VersionRoute(2, "LOADING")}
    route = ModelRoute("m", versions, labels={"stable": label_version}, traffic={1: 1.0})
    return RoutingTable(generation, {"m": route})


class Received:
    def __init__(self) -> None:
        self.states: list[tuple[float, FeedState]] = []
        self.troubles: list[str] = []
        self.lock = threading.Lock()

    def state(self, state: FeedState) -> None:
        with self.lock:
            self.states.append((time.monotonic(), state))

    def trouble(self, reason: str) -> None:
        self.troubles.append(reason)

    def versions(self) -> list[int]:
        with self.lock:
            return [s.version for _, s in self.states]


def test_write_bumps_the_version_and_round_trips(catalog_url: str) -> None:
    store = CatalogStore.from_url(catalog_url)
    try:
        feed = CatalogFeed(store, lambda: ("triton-a:8001", "triton-b:8001"))
        assert feed.write(table(1)) == 1
        assert feed.write(table(2, label_version=2)) == 2
        with store.engine.connect() as connection:
            row = connection.exec_driver_sql("SELECT version, payload FROM routing_state").one()
        state = routing_feed.decode(row[0], row[1])
        assert state.version == 2
        assert state.table == table(2, label_version=2)
        assert state.triton_urls == ("triton-a:8001", "triton-b:8001")
    finally:
        store.close()


def test_follower_gets_each_new_version_once(catalog_url: str) -> None:
    store = CatalogStore.from_url(catalog_url)
    received = Received()
    # A long poll on PostgreSQL: only NOTIFY can deliver within the wait below.
    poll = 30.0 if str(catalog_url).startswith("postgresql") else 0.05
    follower = FeedFollower(str(catalog_url), received.state, received.trouble, poll_seconds=poll)
    try:
        feed = CatalogFeed(store, lambda: ("t:8001",))
        feed.write(table(1))
        follower.start()
        assert wait_until(lambda: received.versions() == [1], 5)
        for generation in (2, 3):
            written = time.monotonic()
            feed.write(table(generation, label_version=2))
            assert wait_until(lambda g=generation: received.versions()[-1:] == [g], 2)
            delay = received.states[-1][0] - written
            assert delay < 1.0, delay
        assert received.versions() == [1, 2, 3]
        assert received.states[-1][1].table.models["m"].labels == {"stable": 2}
    finally:
        follower.stop()
        store.close()


def test_follower_waits_for_a_catalog_that_does_not_exist_yet(
    tmp_path: Path, sqlite_catalog_template: Path
) -> None:
    path = tmp_path / "later" / "catalog.db"
    url = f"sqlite:///{path}"
    received = Received()
    follower = FeedFollower(url, received.state, received.trouble, 0.05, retry_seconds=0.05)
    follower.start()
    try:
        assert wait_until(lambda: received.troubles, 5)
        assert "no catalog" in received.troubles[0]
        assert not path.exists()  # the follower never creates the control plane's database
        path.parent.mkdir()
        staged = path.with_suffix(".staged")  # appears whole, as a migrated catalog would
        staged.write_bytes(sqlite_catalog_template.read_bytes())
        staged.rename(path)
        assert wait_until(lambda: len(received.troubles) >= 2, 5)
        assert "no routing table" in received.troubles[-1]
        store = CatalogStore.from_url(url)
        try:
            CatalogFeed(store, lambda: ()).write(table(7))
        finally:
            store.close()
        assert wait_until(lambda: received.versions() == [1], 5)
        assert received.states[0][1].table.generation == 7
        assert follower.trouble == ""
    finally:
        follower.stop()
