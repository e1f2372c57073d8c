"""The admin REST API from the command line's side: one thin client and the output helpers the
admin verbs share (``admin_cli.py``: models, versions, labels; ``rollout_cli.py``: traffic, shadow,
rollouts, feedback)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

API = "/v1/admin"


class AdminCallError(Exception):
    """The server refused (its ``{"error": ...}`` text) or could not be reached."""


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


def or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def path_segment(segment: str) -> str:
    """One URL path segment: a name with "/" or "?" must not change the route."""
    return quote(segment, safe="")
