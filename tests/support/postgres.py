"""The PostgreSQL server at 127.0.0.1:5432 for tests: reached through its ``test`` database
(started first when it is installed here but down), with throwaway databases made beside it.

The fixtures over it (``postgres_admin``, ``pg_admin_engine``, ``make_pg_database``) are in
``tests/conftest.py``."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

ADMIN_URLS = (
    "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg2://root@127.0.0.1:5432/test",
)


def _reachable_admin_url() -> str | None:
    for url in ADMIN_URLS:
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        try:
            with engine.connect():
                return url
        except Exception:  # noqa: BLE001 - any failure means "not this way"
            continue
        finally:
            engine.dispose()
    return None


def _start_cluster() -> bool:
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


def connect_admin() -> Engine | None:
    """An autocommit engine on the ``test`` database, or None when there is no server."""
    url = _reachable_admin_url()
    if url is None and _start_cluster():
        url = _wait_reachable()
    return None if url is None else create_engine(url, isolation_level="AUTOCOMMIT")


def create_database(admin: Engine, prefix: str = "tfsgate_test") -> str:
    """A new empty database; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False)


def drop_databases(admin: Engine, urls: list[str]) -> None:
    """Drop the databases (``WITH (FORCE)``: a server under test may still hold a connection)."""
    with admin.connect() as conn:
        for url in urls:
            name = make_url(url).database
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
