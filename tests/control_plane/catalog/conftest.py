"""Real databases for catalog tests: a SQLite file per test, a throwaway PostgreSQL database per
session (created through the `test` database and dropped at the end)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine

from control_plane.catalog import CatalogStore, migrate
from tests.support.catalog import fresh_sqlite_catalog

PG_ADMIN_URLS = (
    "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg2://root@127.0.0.1:5432/test",
)
CATALOG_TABLES = (
    "events, traffic, labels, model_versions, models, label_traffic, shadows, model_thresholds,"
    " rollouts, predictions, feedback, gateway_version_seconds, gateway_shadow_totals"
)


def _reachable_admin_url() -> str | None:
    for url in PG_ADMIN_URLS:
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect():
                return url
        except Exception:
            continue
        finally:
            engine.dispose()
    return None


def _start_postgres() -> bool:
    """Start the local cluster; False when PostgreSQL is not installed here."""
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*"))
    if not versions:
        return False
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
        timeout=60,
    )
    return True


def _wait_reachable(timeout: float = 30.0) -> str | None:
    """The admin URL once the server accepts connections (it starts in the background)."""
    deadline = time.monotonic() + timeout
    while (url := _reachable_admin_url()) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return url


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    """An autocommit engine on the `test` database; starts the server if it is down."""
    url = _reachable_admin_url()
    if url is None and _start_postgres():
        url = _wait_reachable()
    if url is None:
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is unreachable and could not be started")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def make_pg_database(pg_admin_engine: Engine) -> Iterator[Callable[[], str]]:
    """Creates uniquely named databases on demand and drops them all at session end."""
    created: list[str] = []

    def make() -> str:
        name = f"tfsgate_test_{uuid.uuid4().hex[:12]}"
        with pg_admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return pg_admin_engine.url.set(database=name).render_as_string(hide_password=False)

    yield make
    with pg_admin_engine.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_catalog_url(make_pg_database: Callable[[], str]) -> str:
    """One PostgreSQL database at head shared by store tests (emptied before each)."""
    url = make_pg_database()
    migrate.upgrade(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite database (no tables): the migration tests start from it."""
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def catalog_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_catalog_template: Path
) -> str | URL:
    """An empty catalog at head, on each backend."""
    if request.param == "sqlite":
        return fresh_sqlite_catalog(sqlite_catalog_template, tmp_path)
    url: str = request.getfixturevalue("pg_catalog_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {CATALOG_TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def store(catalog_url: str) -> Iterator[CatalogStore]:
    catalog = CatalogStore.from_url(catalog_url)
    yield catalog
    catalog.close()
