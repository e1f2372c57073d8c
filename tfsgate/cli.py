"""``tfsgate``: ``serve`` with tensorflow_model_server's flags, the production roles ``gateway``
and ``control-plane`` (each with the flags of its part), plus ``db`` and admin verbs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from pydantic import ValidationError

from tfsgate import flags
from tfsgate.core.defaults import LOG_FORMAT
from tfsgate.settings import ServeSettings

SERVE_DESCRIPTION = (
    "Takes every tensorflow_model_server flag (--flag=value; a bool also as --flag) with TF"
    " Serving's default; docs/flags.md says what each does here. Unset flags come from TFSGATE_*"
    " environment variables."
)


# The front doors' flags: what `tfsgate gateway` takes (with the catalog and Triton to follow).
FRONT_DOOR_FLAGS = (
    "port",
    "grpc_socket_path",
    "rest_api_port",
    "rest_api_num_threads",
    "rest_api_timeout_in_ms",
    "rest_large_bodies",
    "rest_api_enable_cors_support",
    "use_alts_credentials",
    "ssl_config_file",
    "grpc_channel_arguments",
    "grpc_max_threads",
    "monitoring_config_file",
    "enable_grpc_healthcheck_service",
    "enable_serialization_as_tensor_content",
    "enable_profiler",
    "enable_signature_method_name_check",
)
GATEWAY_FLAGS = (
    *FRONT_DOOR_FLAGS,
    "enable_batching",  # the coalescer's rows per Triton call
    "batching_parameters_file",
    "triton_url",
    "triton_http_url",
    "database_url",
    "gateway_workers",
    "reuse_port",
    "control_plane_socket",
    "home",
    "host",
    "log_level",
    "version",
)
# `tfsgate control-plane`: every flag but the front doors'.
GATEWAY_ONLY_FLAGS = ("gateway_workers", "reuse_port", "control_plane_socket")
CONTROL_PLANE_FLAGS = tuple(
    n
    for n in ServeSettings.model_fields
    if n not in FRONT_DOOR_FLAGS and n not in GATEWAY_ONLY_FLAGS
)

ROLES = {
    "serve": (
        "serve TF-Serving REST and gRPC over Triton, all in one process",
        tuple(ServeSettings.model_fields),
    ),
    "gateway": (
        "production role: the REST and gRPC front doors, following the control plane's catalog",
        GATEWAY_FLAGS,
    ),
    "control-plane": (
        "production role: sources, reconciler and admin API (a second one waits as standby)",
        CONTROL_PLANE_FLAGS,
    ),
}
ROLE_DESCRIPTIONS = {
    "serve": SERVE_DESCRIPTION,
    "gateway": (
        "Stateless TF Serving front doors: the routing table comes from the catalog"
        " (--database_url / TFSGATE_DATABASE_URL), the models are served by --triton_url"
        " (repeatable; default: the instances the control plane publishes). Until a table has"
        " arrived every call is UNAVAILABLE."
    ),
    "control-plane": (
        "Sources (--model_config_file or --model_name/--model_base_path), reconciler and admin"
        " API over the catalog; Triton is --triton_url (repeatable) or embedded. One instance"
        " leads; others wait as hot standbys (PostgreSQL advisory lock, or a lock file beside a"
        " SQLite catalog) with nothing started."
    ),
}


def add_serve_parser(subparsers: Any) -> None:
    """The roles in the main parser's help; their flags are parsed by ``role_parser``."""
    for role, (summary, _) in ROLES.items():
        subparsers.add_parser(role, help=summary, add_help=False)


def role_parser(role: str = "serve") -> argparse.ArgumentParser:
    parser = flags.FlagParser(prog=f"tfsgate {role}", description=ROLE_DESCRIPTIONS[role])
    names = ROLES[role][1]
    flags.add_flags(parser, {n: ServeSettings.model_fields[n] for n in names})
    return parser


def serve_parser() -> argparse.ArgumentParser:
    return role_parser("serve")


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


def serve_main(argv: Sequence[str], role: str = "serve") -> int:
    parser = role_parser(role)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:  # a value out of a flag's range, given or from the environment
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"])
        parser.error(f"Invalid value {error.get('input')} for flag {name}: {error['msg']}.")
    if settings.version:
        print(version_text())
        return 0
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=LOG_FORMAT,
    )
    if role == "gateway":
        from tfsgate.gateway_server import serve_gateway

        return serve_gateway(settings, argv)
    from tfsgate.prewarm import started_exporter, started_triton

    exporter = started_exporter(settings)  # before the server's imports: they overlap
    if role == "control-plane":
        from tfsgate.control_plane_server import serve_control_plane

        return serve_control_plane(settings, exporter)
    triton = started_triton(settings)  # likewise
    from tfsgate.server import serve

    return serve(settings, exporter, triton)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in ROLES:
        return serve_main(argv[1:], argv[0])
    # Imported only for the verbs: a serving process would keep httpx (and through it click,
    # rich, pygments) and SQLAlchemy's modules resident for parsers it never uses.
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
    return run_admin(args) if args.command in ADMIN_COMMANDS else 0


if __name__ == "__main__":
    sys.exit(main())
