"""Admin API fixtures: a real catalog (SQLite per test, PostgreSQL per session) under the admin
server of ``tests/support/admin.py``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from control_plane.catalog import migrate
from tests.support.admin import AdminEnv, start_admin
from tests.support.catalog import fresh_sqlite_catalog

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def saved_model(half_plus_two: Path) -> Path:
    """The session's half_plus_two SavedModel (tests/conftest.py); versions are copies of it."""
    return half_plus_two / "00000123"


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except Exception:
        engine.dispose()
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is unreachable")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine: Engine) -> Iterator[str]:
    """A fresh PostgreSQL database at head, dropped afterwards."""
    name = f"tfsgate_admin_{uuid.uuid4().hex[:12]}"
    with pg_admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_admin_engine.url.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    with pg_admin_engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
