"""Alembic migrations: round trips, agreement with the ORM, the head check and `tfsgate db`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, make_url

from control_plane.catalog import CatalogError, create_engine_for, migrate
from control_plane.catalog.orm import Base
from tfsgate.core.status import Code
from tfsgate.db_cli import add_db_parser, run_db

TABLES = {
    "models",
    "model_versions",
    "labels",
    "traffic",
    "events",
    "label_traffic",
    "shadows",
    "model_thresholds",
    "rollouts",
    "predictions",
    "feedback",
    "gateway_version_seconds",
    "gateway_shadow_totals",
    "routing_state",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """An empty database (no schema) on each backend."""
    if request.param == "sqlite":
        return sqlite_url
    make: Callable[[], str] = request.getfixturevalue("make_pg_database")
    return make()


def _tables(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_round_trip(empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # scripts are found through the package, not the CWD
    assert migrate.current(empty_url) is None
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) == migrate.head()
    assert _tables(empty_url) == TABLES
    migrate.downgrade(empty_url, "base")
    assert migrate.current(empty_url) is None
    assert _tables(empty_url) == set()
    migrate.upgrade(empty_url)
    assert migrate.is_at_head(empty_url)
    assert _tables(empty_url) == TABLES


def test_migrations_match_orm(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = create_engine_for(empty_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_ensure_at_head(sqlite_url: str) -> None:
    with pytest.raises(CatalogError) as exc_info:
        migrate.ensure_at_head(sqlite_url)
    assert exc_info.value.code == Code.FAILED_PRECONDITION
    assert exc_info.value.message == (
        f"database schema at base (empty) is behind head {migrate.head()}; "
        f"run `tfsgate db upgrade --database_url {sqlite_url}`"
    )
    assert not migrate.is_at_head(sqlite_url)
    migrate.upgrade(sqlite_url)
    migrate.ensure_at_head(sqlite_url)


@pytest.mark.postgres
def test_ensure_at_head_hides_password(make_pg_database: Callable[[], str]) -> None:
    url = make_url(make_pg_database()).set(password="s3cret")  # trust auth ignores it
    with pytest.raises(CatalogError) as exc_info:
        migrate.ensure_at_head(url)
    assert ":***@127.0.0.1" in exc_info.value.message
    assert "s3cret" not in exc_info.value.message


def test_unreachable_database_is_unavailable() -> None:
    with pytest.raises(CatalogError) as exc_info:
        migrate.ensure_at_head("postgresql+psycopg2://u@127.0.0.1:1/none")  # nothing on port 1
    assert exc_info.value.code == Code.UNAVAILABLE


def _db(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tfsgate")
    add_db_parser(parser.add_subparsers(dest="command"))
    return run_db(parser.parse_args(argv))


def test_db_cli(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    head = migrate.head()
    assert _db(["db", "current", "--database_url", sqlite_url]) == 0
    assert "base (empty)" in capsys.readouterr().out
    assert _db(["db", "upgrade", "--database_url", sqlite_url]) == 0
    assert f"{head} (at head)" in capsys.readouterr().out
    assert _db(["db", "downgrade", "base", "--database_url", sqlite_url]) == 0
    assert migrate.current(sqlite_url) is None
    assert _db(["db", "downgrade", "nosuchrev", "--database_url", sqlite_url]) == 1
    assert "nosuchrev" in capsys.readouterr().err


def test_db_cli_default_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TFSGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("TFSGATE_HOME", str(tmp_path / "home"))
    assert _db(["db", "upgrade"]) == 0
    assert (tmp_path / "home" / "catalog.db").exists()
    env_url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("TFSGATE_DATABASE_URL", env_url)
    assert _db(["db", "current"]) == 0
    assert env_url in capsys.readouterr().out


def test_head_and_revisions_read_from_the_scripts_are_alembics() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate._config())
    assert migrate.head() == scripts.get_current_head()
    shipped = {r.revision: r.down_revision for r in scripts.walk_revisions()}
    assert migrate._revisions() == shipped


def test_current_agrees_with_alembic_at_every_revision(empty_url: str) -> None:
    engine = create_engine_for(empty_url)
    try:
        for revision in sorted(migrate._revisions()):
            migrate.upgrade(empty_url, revision)
            with engine.connect() as conn:
                expected = MigrationContext.configure(conn).get_current_revision()
            assert migrate.current(empty_url) == expected == revision
    finally:
        engine.dispose()


def test_upgrade_in_child_creates_the_catalog_at_head(empty_url: str) -> None:
    migrate.upgrade_in_child(empty_url)
    assert migrate.is_at_head(empty_url)
    assert _tables(empty_url) == TABLES


def test_upgrade_in_child_failure_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "catalog.db").mkdir()  # a directory where the SQLite file should be
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    with pytest.raises(CatalogError) as exc_info:
        migrate.upgrade_in_child(url)
    assert exc_info.value.code == Code.UNAVAILABLE
    assert exc_info.value.message.startswith(f"creating the catalog at {url}: ")


def test_servers_never_import_alembic() -> None:
    """Alembic and Mako stay out of every server process (12-15 MB resident once imported)."""
    code = (
        "import sys, tfsgate.server, tfsgate.control_plane_server, tfsgate.gateway_server;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
