"""``tfsgate``: ``serve`` with tensorflow_model_server's flags, plus ``db`` and admin verbs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from tfsgate.settings import ServeSettings

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def parse_bool(text: str) -> bool:
    """TF Serving's flags take ``--flag``, ``--flag=true`` and ``--flag=false``."""
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_serve_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve TF-Serving REST and gRPC over Triton",
        description="Flags follow tensorflow_model_server; unset ones come from TFSGATE_* env.",
    )
    for name, field in ServeSettings.model_fields.items():
        flag = f"--{name}"
        help_text = field.description or ""
        if field.annotation is bool:
            parser.add_argument(flag, type=parse_bool, nargs="?", const=True, help=help_text)
        elif field.annotation is int:
            parser.add_argument(flag, type=int, help=help_text)
        else:
            parser.add_argument(flag, type=str, help=help_text)


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    given = {
        name: getattr(args, name)
        for name in ServeSettings.model_fields
        if getattr(args, name, None) is not None
    }
    return ServeSettings(**given)


def main(argv: Sequence[str] | None = None) -> int:
    from tfsgate.admin_cli import ADMIN_COMMANDS, add_admin_parsers, run_admin
    from tfsgate.db_cli import add_db_parser, run_db

    parser = argparse.ArgumentParser(prog="tfsgate", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(subparsers)
    add_db_parser(subparsers)
    add_admin_parsers(subparsers)
    args = parser.parse_args(argv)
    if args.command == "db":
        return run_db(args)
    if args.command in ADMIN_COMMANDS:
        return run_admin(args)
    settings = settings_from_args(args)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from tfsgate.server import serve

    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
