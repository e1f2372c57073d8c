"""``tfsgate models|versions|promote|rollback|label|traffic|shadow|rollout|feedback``: admin verbs
over the admin REST API.

The main CLI (tfsgate/cli.py) calls ``add_admin_parsers`` to register the verbs and ``run_admin``
to run one; this module never parses sys.argv itself. The token comes from
``TFSGATE_ADMIN_TOKEN`` (never a flag, so it stays out of shell history and ``ps``). The
rollout verbs (traffic, shadow, rollout, feedback) are ``rollout_cli.py``; the client and the
output helpers ``admin_client.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from tfsgate.admin_client import AdminCallError, AdminClient, format_table, or_dash, path_segment
from tfsgate.core.defaults import DEFAULT_ADMIN_PORT
from tfsgate.rollout_cli import ROLLOUT_VERBS, add_rollout_parsers

DEFAULT_ADMIN_URL = f"http://127.0.0.1:{DEFAULT_ADMIN_PORT}"
ADMIN_COMMANDS = (
    "models",
    "versions",
    "promote",
    "rollback",
    "label",
    "traffic",
    "shadow",
    "rollout",
    "feedback",
)


def add_admin_parsers(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register the admin verbs, each with ``--admin_url`` and ``--timeout``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--admin_url",
        default=os.environ.get("TFSGATE_ADMIN_URL", DEFAULT_ADMIN_URL),
        help=f"admin API base URL (default $TFSGATE_ADMIN_URL or {DEFAULT_ADMIN_URL}); "
        "the token is read from $TFSGATE_ADMIN_TOKEN",
    )
    common.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    subparsers.add_parser("models", parents=[common], help="list models, labels and versions")
    versions = subparsers.add_parser("versions", parents=[common], help="list a model's versions")
    versions.add_argument("model")
    promote = subparsers.add_parser("promote", parents=[common], help="make VERSION stable")
    promote.add_argument("model")
    promote.add_argument("version", type=int)
    rollback = subparsers.add_parser(
        "rollback", parents=[common], help="point stable back at the previous stable version"
    )
    rollback.add_argument("model")
    label = subparsers.add_parser("label", parents=[common], help="set or move a version label")
    label.add_argument("model")
    label.add_argument("label")
    label.add_argument("version", type=int)
    add_rollout_parsers(subparsers, common)


def run_admin(args: argparse.Namespace) -> int:
    """Run one parsed admin verb; prints a table or one line, returns the exit code."""
    verb: Callable[[AdminClient, argparse.Namespace], str] = _VERBS[args.command]
    token = os.environ.get("TFSGATE_ADMIN_TOKEN") or None
    try:
        with AdminClient(args.admin_url, token, args.timeout) as client:
            print(verb(client, args))
    except AdminCallError as exc:
        print(f"tfsgate {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


# -- verbs ---------------------------------------------------------------------------------------
def _models(client: AdminClient, _args: argparse.Namespace) -> str:
    rows = [
        [
            m["name"],
            m["source"],
            or_dash(m["labels"].get("stable")),
            _labels(m["labels"]),
            " ".join(f"{v['version']}:{v['state']}" for v in m["versions"]) or "-",
        ]
        for m in client.call("GET", "/models")["models"]
    ]
    return format_table(["MODEL", "SOURCE", "STABLE", "LABELS", "VERSIONS"], rows)


def _versions(client: AdminClient, args: argparse.Namespace) -> str:
    """One row per version, then one row per signature: its runner and why (issue 8)."""
    rows = []
    for v in client.call("GET", f"/models/{path_segment(args.model)}/versions")["versions"]:
        rows.append(
            [
                str(v["version"]),
                v["state"],
                or_dash(v["pin"]),
                ",".join(v["labels"]) or "-",
                v["state_reason"] or "-",
            ]
        )
        for signature in v.get("signatures", []):
            error = signature.get("max_abs_error")
            why = signature.get("fallback_reason") or (
                "parity max_abs_error " + (f"{error:g}" if error is not None else "-")
            )
            rows.append([f"  {signature['name']}", signature["runner"], "", "", why])
    return format_table(["VERSION", "STATE", "PIN", "LABELS", "REASON"], rows)


def _promote(client: AdminClient, args: argparse.Namespace) -> str:
    # Send the stable we saw: if someone else promotes in between, the server says 409.
    seen = client.call("GET", f"/models/{path_segment(args.model)}/labels")["labels"].get("stable")
    body = {"version": args.version, "expected_stable": seen}
    after = client.call("POST", f"/models/{path_segment(args.model)}/promote", body)
    return f"{args.model}: stable {or_dash(seen)} -> {after['stable']}"


def _rollback(client: AdminClient, args: argparse.Namespace) -> str:
    seen = client.call("GET", f"/models/{path_segment(args.model)}/labels")["labels"].get("stable")
    after = client.call(
        "POST", f"/models/{path_segment(args.model)}/rollback", {"expected_stable": seen}
    )
    return f"{args.model}: stable {or_dash(seen)} -> {after['stable']}"


def _label(client: AdminClient, args: argparse.Namespace) -> str:
    path = f"/models/{path_segment(args.model)}/labels/{path_segment(args.label)}"
    labels = client.call("PUT", path, {"version": args.version})["labels"]
    return f"{args.model}: label {args.label} -> {labels[args.label]}"


def _labels(labels: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


_VERBS: dict[str, Callable[[AdminClient, argparse.Namespace], str]] = {
    "models": _models,
    "versions": _versions,
    "promote": _promote,
    "rollback": _rollback,
    "label": _label,
    **ROLLOUT_VERBS,
}
