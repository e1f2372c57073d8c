"""Admin import: a version from outside the policy, placed under the base path and recorded.

A source outside the base path is copied to ``<base_path>/<version>`` first, so base-path discovery
(and a restart) sees it like any other version. The catalog row is one transaction and one audit
event; a version that fails conversion is recorded FAILED with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from control_plane.catalog.entities import VersionPin, VersionState
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.sources.base_path import SourceError, discover_versions
from tfsgate.core.status import Code

# (model, version, directory, runner setting) -> (checksum, signatures JSON, failure reason or "",
# the runner evidence the catalog keeps)
Convert = Callable[
    [str, int, Path, str], Awaitable[tuple[str, dict[str, Any], str, dict[str, Any]]]
]


async def record_import(
    store: CatalogStore,
    convert: Convert,
    model: str,
    source: Path,
    actor: str,
    version: int | None,
    pin: VersionPin | None,
) -> int:
    """Place ``source`` as version ``version`` of ``model`` (next number when None), convert it
    and record it; returns the version number. The caller checks ``source`` may be read."""
    registered = await asyncio.to_thread(store.get_model, model)
    base_path = Path(registered.base_path)
    number = await asyncio.to_thread(next_version, store, model, base_path, version)
    target = await asyncio.to_thread(place_version, source, base_path, number)
    try:
        digest, signatures, reason, runners = await convert(
            model, number, target, registered.runner.value
        )
        await asyncio.to_thread(
            store.create_model_version,
            model,
            number,
            str(target),
            digest,
            signatures,
            actor,
            state=VersionState.FAILED if reason else VersionState.START,
            state_reason=reason,
            pin=pin,
            runners=runners,
        )
    except CatalogError:
        if target != source.resolve():
            await asyncio.to_thread(shutil.rmtree, target, True)
        raise
    return number


def next_version(store: CatalogStore, model: str, base_path: Path, version: int | None) -> int:
    """``version`` when it is free, else ALREADY_EXISTS; None: one above every known version."""
    known = {v.version for v in store.list_model_versions(model)}
    if version is not None and version in known:
        raise CatalogError(Code.ALREADY_EXISTS, f"model {model!r} version {version} already exists")
    if version is not None:
        return version
    with contextlib.suppress(SourceError):
        known |= set(discover_versions(base_path))
    return max(known, default=0) + 1


def place_version(source: Path, base_path: Path, version: int) -> Path:
    """``<base_path>/<version>`` holding ``source``'s files; copies unless it is that directory.

    The copy goes to a hidden sibling first and is renamed into place, so a concurrent
    base-path scan never sees half a SavedModel (hidden names are not version numbers).
    """
    source, target = source.resolve(), (base_path / str(version)).resolve()
    if source == target:
        return target
    if target.exists():
        raise CatalogError(Code.ALREADY_EXISTS, f"{target} already exists; choose another version")
    try:
        staging = Path(tempfile.mkdtemp(dir=base_path, prefix=f".import-{version}-"))
        shutil.copytree(source, staging / "v")
        (staging / "v").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise CatalogError(
            Code.FAILED_PRECONDITION, f"cannot copy {source} to {target}: {exc}"
        ) from exc
    return target
