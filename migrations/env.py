"""Alembic environment for the catalog.

control_plane.catalog.migrate passes an open connection in `config.attributes["connection"]`
so the engine has the catalog's SQLite settings (foreign keys, BEGIN handling). When run by the
alembic command line (`alembic -c migrations/alembic.ini ...`), the URL comes from
TFSGATE_DATABASE_URL or the ini file.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from control_plane.catalog.engine import create_engine_for
from control_plane.catalog.orm import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _url() -> str:
    url = os.environ.get("TFSGATE_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set TFSGATE_DATABASE_URL or sqlalchemy.url to run migrations")
    return url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine_for(_url())
    try:
        with engine.begin() as own_connection:
            _configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
