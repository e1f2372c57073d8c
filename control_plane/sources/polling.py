"""TF Serving's polls: base paths for new versions, the model config file for edits.

``--file_system_poll_wait_seconds`` re-runs the reconcile pass (which scans every base path);
``--model_config_file_poll_wait_seconds`` re-reads the config file and replaces the model set when
it changed. As in TF Serving, a broken edit is logged and ignored: the old set keeps serving. Both
loops end when ``stopping`` is set; a failing round is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from control_plane.sources.model_config import ModelConfigError, ModelSetConfig, load_model_config
from tfsgate.core.pauses import pause

log = logging.getLogger(__name__)


class Reconciles(Protocol):
    """What the polls drive (the reconciler)."""

    @property
    def desired(self) -> ModelSetConfig: ...

    async def set_desired(self, config: ModelSetConfig) -> None: ...

    async def reconcile(self) -> None: ...


async def every(
    seconds: float, action: Callable[[], Awaitable[None]], stopping: asyncio.Event
) -> None:
    """Run ``action`` every ``seconds`` until ``stopping`` is set."""
    while not stopping.is_set():
        if await pause(stopping, seconds):
            return
        try:
            await action()
        except Exception:  # noqa: BLE001 - a poll failure is logged; the next one retries
            log.exception("periodic task failed")


async def poll_base_paths(target: Reconciles, seconds: float, stopping: asyncio.Event) -> None:
    """Scan base paths every ``seconds``; 0 scans once (at start-up) and never again."""
    if seconds > 0:
        await every(seconds, target.reconcile, stopping)


async def poll_config_file(
    path: str, target: Reconciles, seconds: float, stopping: asyncio.Event
) -> None:
    """Re-read ``path`` every ``seconds``; a changed, valid model set replaces the old one."""

    async def reread() -> None:
        try:
            config = await asyncio.to_thread(load_model_config, path, root_dir=Path.cwd())
        except ModelConfigError as exc:
            # Server::PollFilesystemAndReloadConfig's line; the old set keeps serving.
            if exc.parse_error:
                log.error("%s", exc.parse_error)
            log.error("Failed to read ModelServerConfig file: %s", exc)
            return
        if config.specified and config != target.desired:
            log.info("model config changed: %s", ", ".join(config.names))
            await target.set_desired(config)

    if seconds > 0:
        await every(seconds, reread, stopping)
