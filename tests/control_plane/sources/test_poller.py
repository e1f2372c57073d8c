"""Config-file and base-path watchers over real files, with short poll intervals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Generic, TypeVar

import pytest

from control_plane.sources.model_config import ModelSetConfig, ModelSpecConfig, load_model_config
from control_plane.sources.poller import (
    BasePathWatcher,
    ConfigFileWatcher,
    ModelVersions,
    scan_model,
)
from control_plane.sources.version_policy import Latest, Specific

MakeVersion = Callable[..., Path]
T = TypeVar("T")

POLL = 0.02
WAIT = 2.0


def _config_text(*names: str) -> str:
    entries = "".join(
        f'config {{ name: "{n}" base_path: "/models/{n}" model_platform: "tensorflow" }}'
        for n in names
    )
    return f"model_config_list {{ {entries} }}"


class Collected(Generic[T]):
    """Drains an async iterator in a background task, as a consumer such as the reconciler would.

    Cancelling a pending ``anext()`` would finalize an async generator, so tests never time out
    on the iterator itself; they wait on this queue instead.
    """

    def __init__(self) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue()

    async def next(self) -> T:
        return await asyncio.wait_for(self.queue.get(), timeout=WAIT)

    async def nothing_new(self, seconds: float = POLL * 5) -> None:
        await asyncio.sleep(seconds)
        assert self.queue.empty(), f"unexpected change: {self.queue.get_nowait()}"


@asynccontextmanager
async def collecting(changes: AsyncGenerator[T, None]) -> AsyncIterator[Collected[T]]:
    collected: Collected[T] = Collected()

    async def drain() -> None:
        async for item in changes:
            collected.queue.put_nowait(item)

    task = asyncio.create_task(drain())
    try:
        yield collected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await changes.aclose()


async def test_config_watcher_yields_first_read_then_changes(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(_config_text("a"))
    watcher = ConfigFileWatcher(path, POLL)
    async with collecting(watcher.changes()) as changes:
        assert (await changes.next()).names == ("a",)
        path.write_text(_config_text("a", "b"))
        assert (await changes.next()).names == ("a", "b")
    assert watcher.current is not None and watcher.current.names == ("a", "b")


async def test_config_watcher_does_not_repeat_initial(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(_config_text("a"))
    watcher = ConfigFileWatcher(path, POLL, initial=load_model_config(path))
    async with collecting(watcher.changes()) as changes:
        await changes.nothing_new()
        path.write_text(_config_text("a") + "\n# a comment only\n")  # same models
        await changes.nothing_new()
        path.write_text(_config_text("c"))
        assert (await changes.next()).names == ("c",)


async def test_config_watcher_ignores_broken_edit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "models.config"
    path.write_text(_config_text("a"))
    watcher = ConfigFileWatcher(path, POLL)
    async with collecting(watcher.changes()) as changes:
        first = await changes.next()
        with caplog.at_level(logging.WARNING, logger="control_plane.sources.poller"):
            path.write_text("model_config_list { config { name: ")
            await changes.nothing_new()
        assert watcher.current == first
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # reported once, not on every poll
        assert "Invalid protobuf file" in warnings[0].getMessage()
        path.write_text(_config_text("b"))
        assert (await changes.next()).names == ("b",)


async def test_config_watcher_survives_deleted_file(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(_config_text("a"))
    watcher = ConfigFileWatcher(path, POLL)
    async with collecting(watcher.changes()) as changes:
        await changes.next()
        path.unlink()
        await changes.nothing_new()
        path.write_text(_config_text("b"))
        assert (await changes.next()).names == ("b",)


async def test_config_watcher_takes_no_action_for_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(_config_text("a"))
    watcher = ConfigFileWatcher(path, POLL)
    async with collecting(watcher.changes()) as changes:
        await changes.next()
        path.write_text("")
        await changes.nothing_new()
        path.write_text("model_config_list {}")  # explicit empty list: remove every model
        assert await changes.next() == ModelSetConfig(models=())


async def test_config_watcher_zero_poll_reads_once(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(_config_text("a"))
    seen: list[ModelSetConfig] = []

    async def collect(config: ModelSetConfig) -> None:
        seen.append(config)

    await asyncio.wait_for(ConfigFileWatcher(path, 0).run(collect), timeout=WAIT)
    assert [c.names for c in seen] == [("a",)]


def _model(tmp_path: Path, name: str = "m", **kwargs: object) -> ModelSpecConfig:
    return ModelSpecConfig(name=name, base_path=tmp_path / name, **kwargs)  # type: ignore[arg-type]


async def test_base_path_watcher_sees_new_version(
    tmp_path: Path, make_version: MakeVersion
) -> None:
    make_version("m", "1")
    watcher = BasePathWatcher([_model(tmp_path)], POLL)
    async with collecting(watcher.changes()) as changes:
        first = await changes.next()
        assert set(first["m"].available) == {1} and first["m"].aspired == {1}
        await changes.nothing_new()
        half = make_version("m", "2", ready=False)
        await changes.nothing_new()  # half-copied: not a version yet
        (half / "saved_model.pb").write_bytes(b"")
        second = await changes.next()
        assert set(second["m"].available) == {1, 2} and second["m"].aspired == {2}


async def test_base_path_watcher_applies_policy(tmp_path: Path, make_version: MakeVersion) -> None:
    for version in ("1", "2", "3"):
        make_version("m", version)
    latest_two = _model(tmp_path, policy=Latest(2))
    specific = _model(tmp_path, policy=Specific(frozenset({1, 9})))
    watcher = BasePathWatcher([latest_two], POLL)
    async with collecting(watcher.changes()) as changes:
        assert (await changes.next())["m"].aspired == {2, 3}
        watcher.set_models([specific])
        assert (await changes.next())["m"].aspired == {1}


async def test_base_path_watcher_keeps_versions_when_base_path_vanishes(
    tmp_path: Path, make_version: MakeVersion
) -> None:
    version_dir = make_version("m", "1")
    watcher = BasePathWatcher([_model(tmp_path)], POLL)
    async with collecting(watcher.changes()) as changes:
        await changes.next()
        (tmp_path / "m").rename(tmp_path / "moved")
        gone = (await changes.next())["m"]
        assert gone.error is not None and "does not exist" in gone.error
        assert gone.available == {1: version_dir} and gone.aspired == {1}


async def test_base_path_watcher_zero_poll_scans_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "m").mkdir()
    snapshots: list[dict[str, ModelVersions]] = []

    async def collect(snapshot: dict[str, ModelVersions]) -> None:
        snapshots.append(snapshot)

    with caplog.at_level(logging.WARNING, logger="control_plane.sources.poller"):
        await asyncio.wait_for(BasePathWatcher([_model(tmp_path)], 0).run(collect), timeout=WAIT)
    assert len(snapshots) == 1
    assert f"No versions of servable m found under base path {tmp_path / 'm'}" in caplog.text


async def test_watchers_cancel_cleanly(tmp_path: Path, make_version: MakeVersion) -> None:
    make_version("m", "1")
    path = tmp_path / "models.config"
    path.write_text(_config_text("a"))

    async def ignore(_: object) -> None:
        return None

    tasks = [
        asyncio.create_task(ConfigFileWatcher(path, POLL).run(ignore)),
        asyncio.create_task(BasePathWatcher([_model(tmp_path)], POLL).run(ignore)),
    ]
    await asyncio.sleep(POLL * 3)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)


def test_scan_model_missing_base_path_without_history(tmp_path: Path) -> None:
    result = scan_model(_model(tmp_path, "absent"))
    assert result.available == {} and result.aspired == frozenset()
    assert result.error is not None and "for servable absent" in result.error
