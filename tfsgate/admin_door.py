"""The admin API served by the REST door's HTTP/1.1 server (``gateway/http_server.py``).

The admin app is a FastAPI (ASGI) app; it ran on an embedded uvicorn, whose package import alone
(its CLI's click, its reload supervisors' watchfiles and multiprocessing) was 3.4 MB of the serving
process's RSS, the process whose peak issue 11 bounds at 150 MB. Admin calls are a few a minute:
here each is one whole request handed to the app as one ASGI ``http`` call (``asgi_handler``) and
its answer collected whole, the way the REST door answers (Content-Length, keep-alive, Date,
bounded shutdown: the server's own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from control_plane.api import AdminReconciler, AdminSettings, create_admin_app
from control_plane.api.rollout_routes import RolloutParts
from control_plane.catalog.store import CatalogStore
from gateway.http_server import PEER, Answer, Handler, Headers, HttpServer

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
# The headers the server writes itself (http_server._write): the app's own would be repeated.
_SERVER_HEADERS = frozenset((b"content-length", b"date", b"connection", b"transfer-encoding"))


def asgi_handler(app: Any, server: Callable[[], tuple[str, int]]) -> Handler:
    """``app`` (ASGI 3) as the HTTP server's handler: the whole body in one ``http.request``
    message, the answer's body messages joined. ``server``: the listening address."""

    async def handle(method: str, raw_path: bytes, headers: Headers, body: bytes) -> Answer:
        path, _, query = raw_path.partition(b"?")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path.decode("latin-1")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": PEER.get(),
            "server": server(),
            "state": {},
        }
        received = started = False
        status = 500
        answer_headers: Headers = []
        parts: list[bytes] = []
        answered = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()  # the client stays until the answer is written
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, answer_headers, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                answer_headers = [
                    (bytes(name).lower(), bytes(value))
                    for name, value in message.get("headers", ())
                    if bytes(name).lower() not in _SERVER_HEADERS
                ]
            elif message["type"] == "http.response.body":
                parts.append(bytes(message.get("body", b"")))

        try:
            await app(scope, receive, send)
        except Exception:
            if not started:  # nothing answered: the server's 500
                raise
            # Starlette answered 500 and re-raised for the server to log, as uvicorn does.
            log.exception("admin API %s %r failed", method, raw_path)
        finally:
            answered.set()
        return status, answer_headers, b"".join(parts)

    return handle


class AdminServer:
    """The admin API on its own port; loopback only unless a token is configured."""

    def __init__(
        self,
        store: CatalogStore,
        reconciler: AdminReconciler,
        settings: AdminSettings,
        rollout_parts: RolloutParts | None = None,
    ) -> None:
        if settings.token is None and settings.host != settings.bind_host:
            log.warning("TFSGATE_ADMIN_TOKEN is not set: the admin API listens on 127.0.0.1 only")
        app = create_admin_app(store, reconciler, settings, rollout_parts)
        host, port = settings.bind_host, settings.admin_port
        self._server = HttpServer(asgi_handler(app, self._address), host, port, query=True)

    def _address(self) -> tuple[str, int]:
        return self._server.host, self._server.port

    @property
    def port(self) -> int:
        """The bound port (useful with admin_port 0); valid after ``start``."""
        return self._server.port

    async def start(self) -> None:
        await self._server.start()
        log.info("admin API on %s:%s", self._server.host, self.port)

    async def stop(self) -> None:
        await self._server.stop()
