"""What the processes that reach the catalog without its store need to know of its URL.

Gateways (the routing feed) and the control plane's leadership lock open their own DB-API
connections: a libpq DSN for PostgreSQL, a file path for SQLite.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import make_url

# libpq's TCP keepalives: a connection to a vanished server is noticed in about 11 s instead of
# the kernel's two hours (the leadership lock and LISTEN connections live for the process).
PG_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def backend(url: str) -> str:
    """``sqlite`` or ``postgresql`` (or whatever else the URL names)."""
    return make_url(url).get_backend_name()


def libpq_dsn(url: str) -> str:
    """The URL as libpq (psycopg2.connect) reads it: the driver suffix dropped."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path:
    """The database file of a SQLite URL (a relative path is relative to the working dir)."""
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ValueError(f"{url}: a SQLite catalog shared between processes must be a file path")
    return Path(database)
