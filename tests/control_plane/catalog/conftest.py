"""Real databases for catalog tests: a SQLite file per test, one PostgreSQL database per session
(``make_pg_database`` in ``tests/conftest.py``) emptied before each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from control_plane.catalog import CatalogStore, migrate
from tests.support.catalog import fresh_sqlite_catalog

CATALOG_TABLES = (
    "events, traffic, labels, model_versions, models, label_traffic, shadows, model_thresholds,"
    " rollouts, predictions, feedback, gateway_version_seconds, gateway_shadow_totals,"
    " routing_state"
)


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
