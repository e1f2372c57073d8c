"""Admin API fixtures: a real catalog (SQLite per test, PostgreSQL per session) under the admin
server of ``tests/support/admin.py``."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from control_plane.catalog import migrate
from tests.support.admin import AdminEnv, start_admin

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SavedModel per session, written by TensorFlow in a child process (this process may
    hold tfsgate.protos' bare ``tensorflow`` package); versions are copies of it."""
    base = tmp_path_factory.mktemp("template")
    subprocess.run(
        [sys.executable, "-m", "tfsgate.examples", str(base), "--version", "1"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return base / "1"


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
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
        migrate.upgrade(url)
        return url
    pg: str = request.getfixturevalue("pg_url")
    return pg


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def admin(catalog_url: str, tmp_path: Path, saved_model: Path) -> Iterator[AdminEnv]:
    """A live admin server over SQLite and PostgreSQL (the main flows run on both)."""
    yield from start_admin(catalog_url, tmp_path, saved_model)


@pytest.fixture
def sqlite_admin(sqlite_url: str, tmp_path: Path, saved_model: Path) -> Iterator[AdminEnv]:
    """A live admin server over SQLite only, for the rest of the API surface."""
    yield from start_admin(sqlite_url, tmp_path, saved_model)
