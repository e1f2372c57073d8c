"""The routing feed: the routing table handed to gateways in other processes through the catalog.

The row ``routing_state`` (id 1) holds the latest table's JSON with the Triton instances that
serve it, and ``version``, bumped by every publish.

- Writer: the control plane's publish step (``control_plane/reconciler/publish.py``) calls
  :func:`write` inside one catalog transaction; on PostgreSQL it also sends
  ``NOTIFY tfsgate_routing, '<version>'``, delivered when the transaction commits.
- Reader: :class:`FeedFollower`, a gateway's thread. On PostgreSQL it LISTENs and also polls the
  version every 250 ms (a notification lost with a dropped connection is caught by the poll); on
  SQLite the poll is the mechanism. A new version is fetched once and handed to the gateway.
  Requests never touch SQL.

Plain SQL on the table's name (the ORM row, ``RoutingStateRow``, is the control plane's; gateways
import none of it), and the reader uses bare DB-API connections (psycopg2, sqlite3).
"""

from __future__ import annotations

import contextlib
import logging
import select
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tfsgate.core.catalog_urls import PG_KEEPALIVES, backend, libpq_dsn, sqlite_path
from tfsgate.core.routing_table import RoutingTable

log = logging.getLogger(__name__)

CHANNEL = "tfsgate_routing"
ROW_ID = 1
POLL_SECONDS = 0.25
RETRY_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class FeedState:
    """One publish as a gateway receives it."""

    version: int
    table: RoutingTable
    triton_urls: tuple[str, ...]  # where the control plane loaded the table's models


def encode(table: RoutingTable, triton_urls: tuple[str, ...]) -> str:
    # orjson: an admin call writes the whole table, and each gateway reads it back; the json
    # module took 85 and 104 us for three models' table.
    return orjson.dumps({"table": table.to_json(), "triton_urls": list(triton_urls)}).decode()


def decode(version: int, payload: str) -> FeedState:
    data = orjson.loads(payload)
    table = RoutingTable.from_json(data["table"])
    return FeedState(int(version), table, tuple(data.get("triton_urls", ())))


def write(connection: Connection, table: RoutingTable, triton_urls: tuple[str, ...]) -> int:
    """Store ``table`` as the next version, in the caller's transaction; the new version."""
    now = datetime.now(UTC)
    if connection.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # stored as naive UTC, as the catalog's other timestamps
    values = {"id": ROW_ID, "payload": encode(table, triton_urls), "now": now}
    updated = connection.execute(
        text(
            "UPDATE routing_state SET version = version + 1, payload = :payload,"
            " updated_at = :now WHERE id = :id"
        ),
        values,
    )
    if updated.rowcount == 0:
        connection.execute(
            text(
                "INSERT INTO routing_state (id, version, payload, updated_at)"
                " VALUES (:id, 1, :payload, :now)"
            ),
            values,
        )
    version = int(
        connection.execute(
            text("SELECT version FROM routing_state WHERE id = :id"), {"id": ROW_ID}
        ).scalar_one()
    )
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_notify(:channel, :version)"),
            {
                "channel": CHANNEL,
                "version": str(version),
            },
        )
    return version


class FeedUnavailable(RuntimeError):
    """The catalog cannot be read (yet): no file, no server, no table."""


class _Source(Protocol):
    def version(self) -> int | None: ...

    def state(self) -> FeedState | None: ...

    def wait(self, seconds: float) -> None: ...

    def close(self) -> None: ...


class _Reads:
    """The two reads, on a DB-API connection in autocommit mode (each sees the latest commit)."""

    connection: Any
    marker = "?"

    def _one(self, sql: str) -> tuple[Any, ...] | None:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql.replace("%s", self.marker), (ROW_ID,))
            row = cursor.fetchone()
            return tuple(row) if row is not None else None
        finally:
            cursor.close()

    def version(self) -> int | None:
        row = self._one("SELECT version FROM routing_state WHERE id = %s")
        return int(row[0]) if row else None

    def state(self) -> FeedState | None:
        row = self._one("SELECT version, payload FROM routing_state WHERE id = %s")
        return decode(row[0], row[1]) if row else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


class _SqliteSource(_Reads):
    def __init__(self, url: str, stopping: threading.Event) -> None:
        path = sqlite_path(url)
        if not path.is_file():  # connecting would create it: the control plane creates it
            raise FeedUnavailable(f"no catalog at {path} yet")
        self.connection = sqlite3.connect(str(path), timeout=10, isolation_level=None)
        self._stopping = stopping

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _PostgresSource(_Reads):
    marker = "%s"

    def __init__(self, url: str, stopping: threading.Event) -> None:
        import psycopg2

        self.connection = psycopg2.connect(
            libpq_dsn(url),
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="tfsgate-gateway-feed",
            **PG_KEEPALIVES,
        )
        self.connection.set_session(autocommit=True)
        with self.connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        self._stopping = stopping

    def wait(self, seconds: float) -> None:
        """Until a notification arrives or ``seconds`` pass (the version poll's interval)."""
        if self._stopping.is_set():
            return
        readable, _, _ = select.select([self.connection], [], [], seconds)
        if readable:
            self.connection.poll()  # raises when the connection died: the follower reconnects
            self.connection.notifies.clear()  # the version read next says what changed


def _open(url: str, stopping: threading.Event) -> _Source:
    kind = backend(url)
    if kind == "sqlite":
        return _SqliteSource(url, stopping)
    if kind == "postgresql":
        return _PostgresSource(url, stopping)
    raise FeedUnavailable(f"no routing feed for {kind} catalogs")


class FeedFollower:
    """A thread that follows the feed and hands every new version to ``on_state`` (from that
    thread); ``on_trouble`` gets a one-line reason whenever the catalog cannot be read."""

    def __init__(
        self,
        url: str,
        on_state: Callable[[FeedState], None],
        on_trouble: Callable[[str], None] | None = None,
        poll_seconds: float = POLL_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.url = url
        self.on_state = on_state
        self.on_trouble = on_trouble
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self.version: int | None = None  # the last version handed over
        self.trouble = ""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="routing-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            source: _Source | None = None
            try:
                source = _open(self.url, self._stopping)
                self._follow(source)
            except Exception as exc:  # noqa: BLE001 - any failure: report, wait, reconnect
                self._report(exc)
                self._stopping.wait(self.retry_seconds)
            finally:
                if source is not None:
                    source.close()

    def _follow(self, source: _Source) -> None:
        while not self._stopping.is_set():
            version = source.version()
            if version is None:
                self._report(FeedUnavailable("the control plane has published no routing table"))
            else:
                if version != self.version:  # != : a recreated catalog counts from 1 again
                    state = source.state()
                    if state is not None and state.version != self.version:
                        self.on_state(state)
                        self.version = state.version
                if self.trouble:
                    log.info("routing feed: following version %s", self.version)
                    self.trouble = ""
            source.wait(self.poll_seconds)

    def _report(self, exc: BaseException) -> None:
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        if reason != self.trouble:
            log.warning("routing feed: %s", reason)
            self.trouble = reason
            if self.on_trouble is not None:
                self.on_trouble(reason)
