"""SQLite catalogs for tests: a copy of a database already migrated to head (the session's
``sqlite_catalog_template`` fixture), so each test gets a fresh real catalog without running every
migration again (about 0.2 s each)."""

from __future__ import annotations

import shutil
from pathlib import Path


def fresh_sqlite_catalog(template: Path, directory: Path) -> str:
    """The URL of a new catalog at head in ``directory``."""
    target = directory / "catalog.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"
