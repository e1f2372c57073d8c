"""Schema migrations, driven from code so they work from an installed package.

Alembic is configured programmatically: the scripts are located through the `migrations`
package's path (not the working directory), and the connection comes from create_engine_for so
SQLite gets the catalog's pragmas.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL

import migrations
from control_plane.catalog.engine import create_engine_for, redact, translate_errors
from control_plane.catalog.errors import CatalogError
from tfsgate.core.status import Code


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def _run(url: str | URL, action: str, revision: str) -> None:
    engine = create_engine_for(url)
    try:
        with translate_errors(), engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    except CommandError as exc:
        raise CatalogError(Code.INVALID_ARGUMENT, f"migration failed: {exc}") from exc
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (creating the schema if empty)."""
    _run(url, "upgrade", revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate down to `revision` ("base" drops every catalog table)."""
    _run(url, "downgrade", revision)


def current(url: str | URL) -> str | None:
    """The database's revision, or None for a database without the catalog schema.

    UNAVAILABLE (CatalogError) when the database cannot be reached.
    """
    engine = create_engine_for(url)
    try:
        with translate_errors(), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision shipped with this tfsgate."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    if revision is None:
        raise CatalogError(Code.INTERNAL, "no migrations found in the migrations package")
    return revision


def is_at_head(url: str | URL) -> bool:
    return current(url) == head()


def ensure_at_head(url: str | URL) -> None:
    """Refuse to run on a schema that is not exactly at head (FAILED_PRECONDITION).

    A server on an old schema would fail on its first query; one on a newer schema (written by
    a newer tfsgate) could corrupt data it does not understand.
    """
    at, newest = current(url), head()
    if at == newest:
        return
    shown = redact(url)
    if at is not None and not _is_known(at):
        raise CatalogError(
            Code.FAILED_PRECONDITION,
            f"database schema at {at} is unknown to this tfsgate (head is {newest}); "
            "it was probably written by a newer release",
        )
    raise CatalogError(
        Code.FAILED_PRECONDITION,
        f"database schema at {at or 'base (empty)'} is behind head {newest}; "
        f"run `tfsgate db upgrade --database_url {shown}`",
    )


def _is_known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except CommandError:
        return False
