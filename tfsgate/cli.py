"""``tfsgate``: ``serve`` with tensorflow_model_server's flags, plus ``db`` and admin verbs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from tfsgate import flags
from tfsgate.settings import ServeSettings

SERVE_DESCRIPTION = (
    "Takes every tensorflow_model_server flag (--flag=value; a bool also as --flag) with TF"
    " Serving's default; docs/flags.md says what each does here. Unset flags come from TFSGATE_*"
    " environment variables."
)


def add_serve_parser(subparsers: Any) -> None:
    """``serve`` in the main parser's help; its flags are parsed by ``serve_parser``."""
    subparsers.add_parser(
        "serve", help="serve TF-Serving REST and gRPC over Triton", add_help=False
    )


def serve_parser() -> argparse.ArgumentParser:
    parser = flags.FlagParser(prog="tfsgate serve", description=SERVE_DESCRIPTION)
    flags.add_flags(parser, ServeSettings.model_fields)
    return parser


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings(**flags.given(args, ServeSettings.model_fields))


def version_text() -> str:
    """``--version``: TF Serving prints its own and TensorFlow's version."""

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (
        f"TensorFlow ModelServer: tfsgate-{installed('tfsgate')}"
        f" (TF Serving API {installed('tensorflow-serving-api')})\n"
        f"TensorFlow Library: {installed('tensorflow')}"
    )


def serve_main(argv: Sequence[str]) -> int:
    settings = settings_from_args(serve_parser().parse_args(argv))
    if settings.version:
        print(version_text())
        return 0
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from tfsgate.server import serve

    return serve(settings)


def main(argv: Sequence[str] | None = None) -> int:
    from tfsgate.admin_cli import ADMIN_COMMANDS, add_admin_parsers, run_admin
    from tfsgate.db_cli import add_db_parser, run_db

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return serve_main(argv[1:])
    parser = argparse.ArgumentParser(prog="tfsgate", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(subparsers)
    add_db_parser(subparsers)
    add_admin_parsers(subparsers)
    args = parser.parse_args(argv)
    if args.command == "db":
        return run_db(args)
    return run_admin(args) if args.command in ADMIN_COMMANDS else 0


if __name__ == "__main__":
    sys.exit(main())
