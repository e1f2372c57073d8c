"""Schema migrations, driven from code so they work from an installed package.

Alembic is configured programmatically: the scripts are located through the `migrations`
package's path (not the working directory), and the connection comes from create_engine_for so
SQLite gets the catalog's pragmas.

Alembic (and Mako with it) costs a process 12-15 MB resident for good once imported, so it is
imported only to change a schema: a server reads its catalog's revision with one query and the
head from the scripts themselves (`revision`/`down_revision`, read with `ast`), and creates a
fresh catalog with `upgrade_in_child` (``python -m control_plane.catalog.migrate``).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL

import migrations
from control_plane.catalog.engine import create_engine_for, redact, translate_errors
from control_plane.catalog.errors import CatalogError
from tfsgate.core.status import Code

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"  # Alembic's default version table
SCRIPTS = Path(migrations.__file__).parent / "versions"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def _run(url: str | URL, action: str, revision: str) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

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


def upgrade_in_child(url: str | URL) -> None:
    """`upgrade` to head in a child process, so Alembic never enters the caller (a server).

    The URL travels in the child's environment, not its command line (``ps`` shows that)."""
    full = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    env = {**os.environ, "TFSGATE_MIGRATE_URL": full}
    done = subprocess.run(
        [sys.executable, "-m", __name__], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise CatalogError(Code.UNAVAILABLE, f"creating the catalog at {redact(url)}: {reason}")


def current(url: str | URL) -> str | None:
    """The database's revision, or None for a database without the catalog schema.

    UNAVAILABLE (CatalogError) when the database cannot be reached.
    """
    engine = create_engine_for(url)
    try:
        with translate_errors(), engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            return next(iter(found.scalars()), None)
    finally:
        engine.dispose()


def _revisions() -> dict[str, str | None]:
    """Every shipped revision and the one it follows, read from the scripts' assignments."""
    found: dict[str, str | None] = {}
    for script in sorted(SCRIPTS.glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(script.read_text()).body:
            target: ast.expr
            value: ast.expr | None
            if isinstance(node, ast.AnnAssign):
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            else:
                continue
            if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
                values[target.id] = value.value
        if isinstance(values.get("revision"), str):
            down = values.get("down_revision")
            found[str(values["revision"])] = down if isinstance(down, str) else None
    return found


def head() -> str:
    """The newest revision shipped with this tfsgate (the one no other revision follows)."""
    revisions = _revisions()
    heads = sorted(set(revisions) - {d for d in revisions.values() if d is not None})
    if len(heads) != 1:
        raise CatalogError(Code.INTERNAL, f"migrations package: expected one head, found {heads}")
    return heads[0]


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
    return revision in _revisions()


if __name__ == "__main__":  # upgrade_in_child
    try:
        upgrade(os.environ["TFSGATE_MIGRATE_URL"])
    except CatalogError as exc:
        print(exc.message, file=sys.stderr)
        sys.exit(1)
