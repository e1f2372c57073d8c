"""Leadership between control planes: a lock file beside a SQLite catalog, and PostgreSQL's
advisory lock (lost with its connection)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from control_plane import leadership
from control_plane.leadership import FileLeadership, PostgresLeadership, leadership_for


def test_sqlite_catalog_leads_by_a_lock_file_beside_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    first, second = leadership_for(url), leadership_for(url)
    assert isinstance(first, FileLeadership)
    assert first.path == tmp_path / "catalog.db.leader"
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.still_held()
    first.release()
    assert second.try_acquire()
    second.release()


def test_standby_waits_until_the_leader_releases(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    leader, standby = FileLeadership(path), FileLeadership(path)
    assert leader.try_acquire()

    async def scenario() -> bool:
        stopping = asyncio.Event()
        waiting = asyncio.ensure_future(leadership.acquire(standby, stopping))
        await asyncio.sleep(1.5)
        assert not waiting.done()
        leader.release()
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario())
    standby.release()


@pytest.mark.postgres
def test_postgres_advisory_lock_and_its_loss(make_pg_database: Callable[[], str]) -> None:
    pg_url = make_pg_database()
    first, second = leadership_for(pg_url), leadership_for(pg_url)
    assert isinstance(first, PostgresLeadership) and isinstance(second, PostgresLeadership)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()  # a standby keeps its connection and retries
        assert first.still_held()
        # The leader's connection dies (server restart, network): the lock goes with it.
        engine = create_engine(pg_url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'tfsgate-control-plane-leader'"
                    " AND datname = current_database()"
                    " AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
                    " AND granted)"
                )
            )
        engine.dispose()
        assert not first.still_held()

        async def watched() -> bool:
            return await leadership.watch(first, asyncio.Event())

        assert asyncio.run(watched()) is False
        assert second.try_acquire()
    finally:
        first.release()
        second.release()
