"""Active/standby control planes: only the leader runs sources, the reconciler and the admin API.

- PostgreSQL: ``pg_try_advisory_lock`` on a connection of its own, held for the process's life.
  A standby tries again every second. PostgreSQL drops the lock with the session, so a leader that
  dies (or whose connection dies) frees it at once; the leader checks its connection every second
  and, when it is gone, has lost leadership and must stop acting (another may already lead).
- SQLite (one host): ``flock`` on a lock file beside the database; the kernel releases it when the
  process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from tfsgate.core.catalog_urls import PG_KEEPALIVES, backend, libpq_dsn, sqlite_path
from tfsgate.core.pauses import pause

log = logging.getLogger(__name__)

# pg_advisory_lock's key space is shared by every application on the database: one fixed key,
# "tfsgate" in ASCII.
LOCK_KEY = 0x74667367617465
RETRY_SECONDS = 1.0
CHECK_SECONDS = 1.0


class Leadership(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process leads (blocking I/O)."""
        ...

    def still_held(self) -> bool:
        """False once the lock is lost (blocking I/O)."""
        ...

    def release(self) -> None: ...


class PostgresLeadership:
    def __init__(self, url: str, key: int = LOCK_KEY) -> None:
        self.url = url
        self.key = key
        self._connection: Any = None

    def try_acquire(self) -> bool:
        import psycopg2

        try:
            if self._connection is None:
                self._connection = psycopg2.connect(
                    libpq_dsn(self.url),
                    connect_timeout=5,
                    application_name="tfsgate-control-plane-leader",
                    **PG_KEEPALIVES,
                )
                self._connection.set_session(autocommit=True)
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                row = cursor.fetchone()
                return bool(row and row[0])
        except psycopg2.Error as exc:
            log.warning("leadership: catalog unreachable: %s", str(exc).strip().splitlines()[0])
            self.release()
            return False

    def still_held(self) -> bool:
        import psycopg2

        if self._connection is None:
            return False
        try:
            with self._connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 5000; SELECT 1")
            return True
        except psycopg2.Error:
            return False

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()  # the session's advisory locks go with it
        self._connection = None


class FileLeadership:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who leads, for operators
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def leadership_for(catalog_url: str) -> Leadership:
    if backend(catalog_url) == "postgresql":
        return PostgresLeadership(catalog_url)
    path = sqlite_path(catalog_url)
    return FileLeadership(path.with_name(path.name + ".leader"))


async def acquire(leadership: Leadership, stopping: asyncio.Event) -> bool:
    """Wait until this process leads (True) or ``stopping`` is set (False)."""
    announced = False
    while not stopping.is_set():
        if await asyncio.to_thread(leadership.try_acquire):
            log.info("leadership: this control plane leads")
            return True
        if not announced:
            log.info("leadership: another control plane leads; standing by")
            announced = True
        await pause(stopping, RETRY_SECONDS)
    return False


async def watch(leadership: Leadership, stopping: asyncio.Event) -> bool:
    """Return False as soon as leadership is lost, True when ``stopping`` is set first."""
    while not stopping.is_set():
        if not await asyncio.to_thread(leadership.still_held):
            log.error("leadership: lost the lock (catalog connection gone); stopping")
            return False
        await pause(stopping, CHECK_SECONDS)
    return True
