"""A real ``tfsgate serve`` with its admin API on, and plain-HTTP calls to that API (the e2e
tests; ``tests/support/admin.py`` is the in-process admin server of the API's own tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.servers import ServerProcess, free_port, start_server

ADMIN_TOKEN = "e2e-admin-secret"


@contextmanager
def serve_with_admin(
    root: Path,
    config_text: str,
    model: str,
    flags: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[tuple[ServerProcess, str]]:
    """``tfsgate serve --model_config_file`` (``root/models.config``, written from
    ``config_text``, home ``root/home``, more ``flags``) with the admin API on a free port, once
    it serves ``model``; yields the server and the admin API's base URL
    (``http://127.0.0.1:<port>/v1/admin``)."""
    config = root / "models.config"
    config.write_text(config_text)
    admin_port = free_port()
    args = [f"--model_config_file={config}", f"--admin_port={admin_port}", *flags]
    env = {"TFSGATE_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}
    with start_server(root / "home", args, model=model, env=env) as server:
        yield server, f"http://127.0.0.1:{admin_port}/v1/admin"


def admin_call(
    method: str, url: str, json: object | None = None, timeout: float = 60
) -> httpx.Response:
    """One admin API call with the token, whatever it answers."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return httpx.request(method, url, json=json, headers=headers, timeout=timeout)


def admin(method: str, url: str, json: object | None = None, timeout: float = 60) -> httpx.Response:
    """One admin API call with the token; the test fails unless it succeeds."""
    response = admin_call(method, url, json, timeout)
    assert response.is_success, response.text
    return response


def admin_cli(api: str, *argv: str) -> str:
    """``tfsgate <argv>`` (the admin CLI) against the admin API at ``api``: its standard output;
    the test fails when it exits non-zero."""
    env = {
        **os.environ,
        "TFSGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "TFSGATE_ADMIN_URL": api.removesuffix("/v1/admin"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tfsgate.cli", *argv], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
