"""`tfsgate db upgrade|downgrade|current`: catalog schema management from the command line.

The main CLI (tfsgate/cli.py) calls `add_db_parser` to register the subcommand and `run_db` to
run it; this module never parses sys.argv itself.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from control_plane.catalog import migrate
from control_plane.catalog.engine import default_database_url, redact
from control_plane.catalog.errors import CatalogError


def add_db_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Register `db` with its `upgrade`, `downgrade` and `current` subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database_url",
        default=None,
        help="catalog database URL (default: $TFSGATE_DATABASE_URL, else "
        "sqlite:///$TFSGATE_HOME/catalog.db with TFSGATE_HOME defaulting to ./var)",
    )
    db = subparsers.add_parser("db", help="manage the catalog database schema")
    commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = commands.add_parser("upgrade", parents=[common], help="migrate up (default: to head)")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    down = commands.add_parser("downgrade", parents=[common], help="migrate down to a revision")
    down.add_argument("revision", help='target revision, e.g. "base" to drop every table')
    commands.add_parser("current", parents=[common], help="print the schema revision")
    return db


def run_db(args: argparse.Namespace) -> int:
    """Run the parsed `db` subcommand; returns the process exit code."""
    url: str = args.database_url or default_database_url()
    try:
        if args.db_command == "upgrade":
            migrate.upgrade(url, args.revision)
        elif args.db_command == "downgrade":
            migrate.downgrade(url, args.revision)
        _print_status(url)
    except CatalogError as exc:
        print(f"tfsgate db {args.db_command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_status(url: str) -> None:
    at, newest = migrate.current(url), migrate.head()
    state = "at head" if at == newest else f"head is {newest}"
    print(f"{redact(url)}: {at or 'base (empty)'} ({state})")
