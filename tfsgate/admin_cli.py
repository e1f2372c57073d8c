"""``tfsgate models|versions|promote|rollback|label``: admin verbs over the admin REST API.

The main CLI (tfsgate/cli.py) calls ``add_admin_parsers`` to register the verbs and ``run_admin``
to run one; this module never parses sys.argv itself. The token comes from
``TFSGATE_ADMIN_TOKEN`` (never a flag, so it stays out of shell history and ``ps``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from tfsgate.core.defaults import DEFAULT_ADMIN_PORT

DEFAULT_ADMIN_URL = f"http://127.0.0.1:{DEFAULT_ADMIN_PORT}"
API = "/v1/admin"
ADMIN_COMMANDS = ("models", "versions", "promote", "rollback", "label")


class AdminCallError(Exception):
    """The server refused (its ``{"error": ...}`` text) or could not be reached."""


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


class AdminClient:
    """A thin httpx client: JSON in, JSON out, the server's error text as AdminCallError."""

    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, API + path, json=body)
        except httpx.HTTPError as exc:
            url = self._http.base_url
            raise AdminCallError(f"cannot reach the admin API at {url}: {exc}") from exc
        if response.is_success:
            return response.json()
        raise AdminCallError(f"{response.status_code} {_error_text(response)}")


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text or response.reason_phrase


# -- verbs ---------------------------------------------------------------------------------------
def _models(client: AdminClient, _args: argparse.Namespace) -> str:
    rows = [
        [
            m["name"],
            m["source"],
            _or_dash(m["labels"].get("stable")),
            _labels(m["labels"]),
            " ".join(f"{v['version']}:{v['state']}" for v in m["versions"]) or "-",
        ]
        for m in client.call("GET", "/models")["models"]
    ]
    return format_table(["MODEL", "SOURCE", "STABLE", "LABELS", "VERSIONS"], rows)


def _versions(client: AdminClient, args: argparse.Namespace) -> str:
    rows = [
        [
            str(v["version"]),
            v["state"],
            _or_dash(v["pin"]),
            ",".join(v["labels"]) or "-",
            v["state_reason"] or "-",
        ]
        for v in client.call("GET", f"/models/{_q(args.model)}/versions")["versions"]
    ]
    return format_table(["VERSION", "STATE", "PIN", "LABELS", "REASON"], rows)


def _promote(client: AdminClient, args: argparse.Namespace) -> str:
    # Send the stable we saw: if someone else promotes in between, the server says 409.
    seen = client.call("GET", f"/models/{_q(args.model)}/labels")["labels"].get("stable")
    body = {"version": args.version, "expected_stable": seen}
    after = client.call("POST", f"/models/{_q(args.model)}/promote", body)
    return f"{args.model}: stable {_or_dash(seen)} -> {after['stable']}"


def _rollback(client: AdminClient, args: argparse.Namespace) -> str:
    seen = client.call("GET", f"/models/{_q(args.model)}/labels")["labels"].get("stable")
    after = client.call("POST", f"/models/{_q(args.model)}/rollback", {"expected_stable": seen})
    return f"{args.model}: stable {_or_dash(seen)} -> {after['stable']}"


def _label(client: AdminClient, args: argparse.Namespace) -> str:
    path = f"/models/{_q(args.model)}/labels/{_q(args.label)}"
    labels = client.call("PUT", path, {"version": args.version})["labels"]
    return f"{args.model}: label {args.label} -> {labels[args.label]}"


_VERBS: dict[str, Callable[[AdminClient, argparse.Namespace], str]] = {
    "models": _models,
    "versions": _versions,
    "promote": _promote,
    "rollback": _rollback,
    "label": _label,
}


# -- output --------------------------------------------------------------------------------------
def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, like kubectl; an empty table says so."""
    if not rows:
        return "(none)"
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def _labels(labels: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def _q(segment: str) -> str:
    """One URL path segment: a name with "/" or "?" must not change the route."""
    return quote(segment, safe="")
