"""Polling sources of desired state: the model config file and the models' base paths.

Both watchers are async iterators that yield only on change (``changes()``), or push to a
coroutine callback (``run(callback)``); both stop cleanly when their task is cancelled. File
system work runs in a worker thread so a slow (network) file system never blocks the loop.
Consume ``changes()`` from one task and do not put a timeout on a single ``anext()``: cancelling
a pending step finalizes an async generator, which ends the watcher.

The reconciler can compose them: for each :class:`ModelSetConfig` from
:class:`ConfigFileWatcher`, call :meth:`BasePathWatcher.set_models`; every snapshot the
base-path watcher yields is then the full desired state (per model: the versions on disk and
the versions its policy wants served).

Behaviour follows TF Serving's ``Server::PollFilesystemAndReloadConfig`` (a config that fails
to read or parse is logged and the previous config stays in effect; an empty config is "no
action") and ``FileSystemStoragePathSource`` (poll wait 0 scans once; a missing base path is
an error, never an empty version list, so the versions seen before it vanished are kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from control_plane.sources.base_path import SourceError, discover_versions, no_versions_message
from control_plane.sources.model_config import (
    ModelConfigError,
    ModelSetConfig,
    ModelSpecConfig,
    parse_model_config,
    read_config_text,
)
from control_plane.sources.version_policy import missing_specific_versions, select_versions

logger = logging.getLogger(__name__)


class ConfigFileWatcher:
    """Re-reads a ``--model_config_file`` and yields each new valid :class:`ModelSetConfig`.

    ``initial`` is the config already in effect (normally the one the server started with,
    loaded with :func:`~control_plane.sources.model_config.load_model_config` so that a broken
    file is fatal at startup, as in TF Serving); it is not yielded again. Without it, the first
    valid read is yielded. ``poll_seconds <= 0`` reads once and stops, like TF Serving's default
    ``--model_config_file_poll_wait_seconds=0`` (no polling).
    """

    def __init__(
        self,
        path: Path | str,
        poll_seconds: float,
        *,
        root_dir: Path | str | None = None,
        initial: ModelSetConfig | None = None,
    ) -> None:
        self._path = Path(path)
        self._poll_seconds = poll_seconds
        self._root_dir = root_dir
        self._current = initial
        self._digest: str | None = None
        self._last_problem: str | None = None

    @property
    def current(self) -> ModelSetConfig | None:
        """The config in effect: the last one yielded, or ``initial``."""
        return self._current

    async def changes(self) -> AsyncGenerator[ModelSetConfig, None]:
        """Yield every valid config that differs from the one in effect."""
        while True:
            config = await asyncio.to_thread(self.poll_once)
            if config is not None:
                yield config
            if self._poll_seconds <= 0:
                return
            await asyncio.sleep(self._poll_seconds)

    async def run(self, callback: Callable[[ModelSetConfig], Awaitable[None]]) -> None:
        """Await ``callback(config)`` for each change; returns only when polling stops."""
        async for config in self.changes():
            await callback(config)

    def poll_once(self) -> ModelSetConfig | None:
        """Read the file once; return the new config if it changed and is valid, else None.

        Unchanged content (same SHA-256) is not parsed again, so a broken edit is reported once.
        """
        try:
            text = read_config_text(self._path)
        except ModelConfigError as exc:
            self._report(str(exc))
            return None
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest == self._digest:
            return None
        self._digest = digest
        return self._accept(text)

    def _accept(self, text: str) -> ModelSetConfig | None:
        try:
            config = parse_model_config(text, source=str(self._path), root_dir=self._root_dir)
        except ModelConfigError as exc:
            self._report(str(exc))
            return None
        self._last_problem = None
        if not config.specified and self._current is not None:
            logger.info("%s: Taking no action for empty config.", self._path)
            return None
        if config == self._current:
            return None
        self._current = config
        logger.info("%s: model config changed: %s", self._path, ", ".join(config.names) or "-")
        return config

    def _report(self, problem: str) -> None:
        """Log a failed read or parse once per distinct problem."""
        if problem != self._last_problem:
            logger.warning("Ignoring model config update, previous config stays: %s", problem)
        self._last_problem = problem


@dataclass(frozen=True)
class ModelVersions:
    """What one poll found for one model.

    ``available``: ready versions on disk (number to directory). ``aspired``: those the model's
    policy selects. ``error``: why the base path could not be read; ``available`` then keeps the
    versions seen before (empty on the first poll), as TF Serving never turns an unreadable
    base path into "no versions".
    """

    model: ModelSpecConfig
    available: Mapping[int, Path] = field(default_factory=dict)
    aspired: frozenset[int] = frozenset()
    error: str | None = None


def scan_model(model: ModelSpecConfig, previous: ModelVersions | None = None) -> ModelVersions:
    """Discover ``model``'s versions and apply its policy (blocking file system access)."""
    try:
        available: Mapping[int, Path] = discover_versions(model.base_path, model_name=model.name)
        error = None
    except SourceError as exc:
        same_path = previous is not None and previous.model.base_path == model.base_path
        available = previous.available if previous is not None and same_path else {}
        error = str(exc)
    aspired = select_versions(model.policy, available)
    return ModelVersions(model=model, available=available, aspired=aspired, error=error)


def scan_models(
    models: Iterable[ModelSpecConfig], previous: Mapping[str, ModelVersions] | None = None
) -> dict[str, ModelVersions]:
    """:func:`scan_model` for each model, keyed by name."""
    earlier = previous or {}
    return {model.name: scan_model(model, earlier.get(model.name)) for model in models}


class BasePathWatcher:
    """Polls every model's base path and yields the whole snapshot when any model changes.

    Each snapshot maps model name to :class:`ModelVersions`. The first scan is always yielded.
    ``poll_seconds <= 0`` scans once and stops, like ``--file_system_poll_wait_seconds=0``.
    """

    def __init__(self, models: Iterable[ModelSpecConfig], poll_seconds: float) -> None:
        self._models = tuple(models)
        self._poll_seconds = poll_seconds
        self._snapshot: dict[str, ModelVersions] = {}
        self._wake = asyncio.Event()

    @property
    def snapshot(self) -> dict[str, ModelVersions]:
        """The last snapshot taken (empty before the first scan)."""
        return dict(self._snapshot)

    def set_models(self, models: Iterable[ModelSpecConfig]) -> None:
        """Replace the watched models (a new config) and rescan now rather than at the next tick.

        Call from the event loop's thread.
        """
        self._models = tuple(models)
        self._wake.set()

    async def changes(self) -> AsyncGenerator[dict[str, ModelVersions], None]:
        """Yield a snapshot on the first scan and whenever it differs from the previous one."""
        first = True
        while True:
            self._wake.clear()
            snapshot = await asyncio.to_thread(scan_models, self._models, self._snapshot)
            changed = first or snapshot != self._snapshot
            self._log_changes(snapshot)
            self._snapshot = snapshot
            first = False
            if changed:
                yield dict(snapshot)
            if self._poll_seconds <= 0:
                return
            await self._sleep()

    async def run(self, callback: Callable[[dict[str, ModelVersions]], Awaitable[None]]) -> None:
        """Await ``callback(snapshot)`` for each change; returns only when polling stops."""
        async for snapshot in self.changes():
            await callback(snapshot)

    async def _sleep(self) -> None:
        """Wait one poll interval, or less when :meth:`set_models` wakes us."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)

    def _log_changes(self, snapshot: Mapping[str, ModelVersions]) -> None:
        for name, versions in snapshot.items():
            if versions != self._snapshot.get(name):
                _log_model_versions(versions)


def _log_model_versions(versions: ModelVersions) -> None:
    """Log one model's new state with TF Serving's wording where it has one."""
    model = versions.model
    if versions.error is not None:
        logger.error(
            "FileSystemStoragePathSource encountered a filesystem access error: %s",
            versions.error,
        )
        return
    for version in sorted(missing_specific_versions(model.policy, versions.available)):
        logger.warning(
            "Version %d of servable %s, which was requested to be served as a 'specific' "
            "version in the servable's version policy, was not found in the file system",
            version,
            model.name,
        )
    if not versions.aspired:
        logger.warning("%s", no_versions_message(model.name, model.base_path))
        return
    for version in sorted(versions.aspired):
        logger.info(
            "Aspiring version for servable %s from path: %s",
            model.name,
            versions.available[version],
        )
