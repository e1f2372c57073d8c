"""Engine factory and URL defaults."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from control_plane.catalog import create_engine_for, default_database_url


def test_default_database_url() -> None:
    assert default_database_url({}) == "sqlite:///var/catalog.db"
    assert default_database_url({"TFSGATE_HOME": "/srv/tfs"}) == "sqlite:////srv/tfs/catalog.db"
    url = "postgresql+psycopg2://u@db/catalog"
    assert default_database_url({"TFSGATE_DATABASE_URL": url, "TFSGATE_HOME": "/x"}) == url


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    """WAL, enforced foreign keys and a busy timeout on every pooled connection."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'new' / 'catalog.db'}")
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert conn.scalar(text("PRAGMA foreign_keys")) == 1
            assert conn.scalar(text("PRAGMA busy_timeout")) >= 1000
        assert (tmp_path / "new" / "catalog.db").exists()
    finally:
        engine.dispose()
