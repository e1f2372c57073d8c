"""Frozen value types returned by the catalog store.

They are separate from the ORM rows so that no SQLAlchemy object (with its session, lazy loads and
mutability) ever leaves the store; callers get plain immutable data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Literal

from control_plane.catalog.errors import CatalogError, StatusCode

STABLE_LABEL = "stable"
PREVIOUS_STABLE_LABEL = "previous_stable"


class VersionState(StrEnum):
    """TF Serving's servable states (ServableState::ManagerState) plus FAILED for errors."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"
    FAILED = "FAILED"


class Action(StrEnum):
    """The audit-log action names; one per mutating store verb."""

    CREATE_MODEL = "create_model"
    UPDATE_MODEL = "update_model"
    DELETE_MODEL = "delete_model"
    CREATE_MODEL_VERSION = "create_model_version"
    SET_MODEL_VERSION_STATE = "set_model_version_state"
    SET_MODEL_VERSION_LABEL = "set_model_version_label"
    DELETE_MODEL_VERSION_LABEL = "delete_model_version_label"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    SET_TRAFFIC = "set_traffic"
    SET_MODEL_VERSION_PIN = "set_model_version_pin"


class VersionPin(StrEnum):
    """An operator's override of the version policy for one version (set via the admin API).

    LOAD serves the version even if the policy would not select it; UNLOAD keeps it out of
    Triton and out of the policy's selection, so "latest" falls back to the next version.
    """

    LOAD = "load"
    UNLOAD = "unload"


class Expect(Enum):
    """Sentinel for optimistic-concurrency arguments: ANY means "do not check"."""

    ANY = "any"


ExpectedStable = int | None | Literal[Expect.ANY]

PolicyKind = Literal["latest", "all", "specific"]


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy: which versions under a base path should be served.

    Stored in its proto-JSON shape ({"latest": {"num_versions": 1}}, {"all": {}},
    {"specific": {"versions": [1, 2]}}) so it round-trips with model_config files.
    """

    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        return cls("latest", num_versions=num_versions)

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls("all", num_versions=0)

    @classmethod
    def specific(cls, versions: tuple[int, ...] | list[int]) -> VersionPolicy:
        return cls("specific", num_versions=0, versions=tuple(sorted(set(versions))))

    def to_json(self) -> dict[str, Any]:
        if self.kind == "latest":
            return {"latest": {"num_versions": self.num_versions}}
        if self.kind == "all":
            return {"all": {}}
        return {"specific": {"versions": list(self.versions)}}

    @classmethod
    def parse(cls, value: VersionPolicy | Mapping[str, Any] | str) -> VersionPolicy:
        """Accept a policy object, its JSON dict (snake or camel case) or JSON text."""
        if isinstance(value, VersionPolicy):
            return value
        data = _load_policy_json(value)
        if len(data) != 1:
            raise _bad_policy(value, "exactly one of latest, all, specific is required")
        ((kind, body),) = data.items()
        if not isinstance(body, Mapping):
            raise _bad_policy(value, f"{kind} must be an object")
        return _policy_from_body(kind, body, value)


def _load_policy_json(value: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _bad_policy(value, "not JSON") from exc
    if not isinstance(value, Mapping):
        raise _bad_policy(value, "must be a JSON object")
    return value


def _policy_from_body(kind: str, body: Mapping[str, Any], raw: object) -> VersionPolicy:
    if kind == "all":
        return VersionPolicy.all()
    if kind == "latest":
        num = body.get("num_versions", body.get("numVersions", 1))
        if not _is_int(num) or num < 1:
            raise _bad_policy(raw, "latest.num_versions must be an integer >= 1")
        return VersionPolicy.latest(num)
    if kind == "specific":
        versions = body.get("versions", [])
        # proto JSON renders int64 as strings, so accept "3" as well as 3.
        try:
            parsed = [int(v) for v in versions]
        except (TypeError, ValueError) as exc:
            raise _bad_policy(raw, "specific.versions must be integers") from exc
        if not parsed or any(v < 0 for v in parsed):
            raise _bad_policy(raw, "specific.versions must be non-empty, non-negative")
        return VersionPolicy.specific(parsed)
    raise _bad_policy(raw, f"unknown policy {kind!r}")


def _bad_policy(value: object, why: str) -> CatalogError:
    return CatalogError(StatusCode.INVALID_ARGUMENT, f"invalid version policy {value!r}: {why}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Model:
    """A served model: a TF Serving model name, its base path and version policy."""

    name: str
    base_path: str
    policy: VersionPolicy
    platform: str
    created_at: datetime
    updated_at: datetime
    # Registered through the admin API (not flags or --model_config_file): the reconciler
    # serves it from the catalog, so it survives restarts and config reloads.
    admin_registered: bool = False


@dataclass(frozen=True)
class ModelVersion:
    """One version directory of a model and its serving state.

    `signatures` is the caller's opaque dict (the converter's description of the SavedModel's
    signature defs); it is excluded from hashing because dicts are not hashable.
    """

    model: str
    version: int
    source_path: str
    checksum: str
    signatures: dict[str, Any] = field(hash=False)
    state: VersionState
    state_reason: str
    created_at: datetime
    updated_at: datetime
    pin: VersionPin | None = None


@dataclass(frozen=True)
class Event:
    """One audit-log entry: who did what to which model, with before/after snapshots."""

    id: int
    time: datetime
    actor: str
    action: str
    model: str
    version: int | None
    before: dict[str, Any] | None = field(hash=False)
    after: dict[str, Any] | None = field(hash=False)
