"""Admin API fixtures: a real catalog (SQLite per test, PostgreSQL per session) under the admin
server of ``tests/support/admin.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from control_plane.catalog import migrate
from tests.support.admin import AdminEnv, start_admin
from tests.support.catalog import fresh_sqlite_catalog


@pytest.fixture(scope="session")
def saved_model(half_plus_two: Path) -> Path:
    """The session's half_plus_two SavedModel (tests/conftest.py); versions are copies of it."""
    return half_plus_two / "00000123"


@pytest.fixture
def pg_url(make_pg_database: Callable[[], str]) -> str:
    """A fresh PostgreSQL database at head (``make_pg_database`` in ``tests/conftest.py``)."""
    url = make_pg_database()
    migrate.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_catalog_template: Path
) -> str:
    if request.param == "sqlite":
        return fresh_sqlite_catalog(sqlite_catalog_template, tmp_path)
    pg: str = request.getfixturevalue("pg_url")
    return pg


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_catalog_template: Path) -> str:
    return fresh_sqlite_catalog(sqlite_catalog_template, tmp_path)


@pytest.fixture
def admin(catalog_url: str, tmp_path: Path, saved_model: Path) -> Iterator[AdminEnv]:
    """A live admin server over SQLite and PostgreSQL (the main flows run on both)."""
    yield from start_admin(catalog_url, tmp_path, saved_model)


@pytest.fixture
def sqlite_admin(sqlite_url: str, tmp_path: Path, saved_model: Path) -> Iterator[AdminEnv]:
    """A live admin server over SQLite only, for the rest of the API surface."""
    yield from start_admin(sqlite_url, tmp_path, saved_model)
