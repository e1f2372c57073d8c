"""The one version policy type: which of a model's versions on disk should be served.

Mirrors ``FileSystemStoragePathSourceConfig.ServableVersionPolicy`` from TF Serving
(``tensorflow_serving/sources/storage_path/file_system_storage_path_source.proto``) as a small
frozen type, so no protobuf object travels around. Selection follows
``file_system_storage_path_source.cc`` (``AspireLatestVersions``, ``AspireAllVersions``,
``AspireSpecificVersions``). The catalog stores it in its proto-JSON shape
(``{"latest": {"num_versions": 1}}``, ``{"all": {}}``, ``{"specific": {"versions": [1, 2]}}``) so it
round-trips with model config files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tfsgate.core.status import Code, ServingError

PolicyKind = Literal["latest", "all", "specific"]


@dataclass(frozen=True)
class VersionPolicy:
    """Latest N (TF Serving's default, with N = 1), all, or specific versions."""

    kind: PolicyKind = "latest"
    num_versions: int = 1  # latest only
    versions: tuple[int, ...] = ()  # specific only; sorted, distinct

    @classmethod
    def latest(cls, num_versions: int = 1) -> VersionPolicy:
        if num_versions < 1:
            raise ValueError(f"latest num_versions must be at least 1, got {num_versions}")
        return cls("latest", num_versions=num_versions)

    @classmethod
    def all(cls) -> VersionPolicy:
        return cls("all", num_versions=0)

    @classmethod
    def specific(cls, versions: Iterable[int]) -> VersionPolicy:
        return cls("specific", num_versions=0, versions=tuple(sorted(set(versions))))

    # -- the three spellings: proto, JSON, text --------------------------------------------------
    @classmethod
    def from_proto(cls, proto: Any) -> VersionPolicy:
        """Convert a ``ServableVersionPolicy`` message (``ModelConfig.model_version_policy``).

        An unset oneof means latest 1. ``latest { num_versions: 0 }`` also means 1: TF Serving
        serves ``max(num_versions, 1)`` (``AspireLatestVersions``).
        """
        choice = proto.WhichOneof("policy_choice")
        if choice == "all":
            return cls.all()
        if choice == "specific":
            return cls.specific(int(v) for v in proto.specific.versions)
        if choice == "latest":
            return cls.latest(max(int(proto.latest.num_versions), 1))
        return cls.latest()

    def to_json(self) -> dict[str, Any]:
        if self.kind == "latest":
            return {"latest": {"num_versions": self.num_versions}}
        if self.kind == "all":
            return {"all": {}}
        return {"specific": {"versions": list(self.versions)}}

    @classmethod
    def parse(cls, value: VersionPolicy | Mapping[str, Any] | str) -> VersionPolicy:
        """A policy from its JSON dict (snake or camel case), JSON text, or a policy (checked the
        same way); INVALID_ARGUMENT when it is not a valid policy."""
        if isinstance(value, VersionPolicy):
            value = value.to_json()
        data = _load_policy_json(value)
        if len(data) != 1:
            raise _bad_policy(value, "exactly one of latest, all, specific is required")
        ((kind, body),) = data.items()
        if not isinstance(body, Mapping):
            raise _bad_policy(value, f"{kind} must be an object")
        return _policy_from_body(kind, body, value)

    # -- selection -------------------------------------------------------------------------------
    def select(self, available: Iterable[int]) -> frozenset[int]:
        """The versions of ``available`` this policy wants served.

        Latest N picks the N highest numbers; all keeps everything; specific keeps the intersection
        (requested versions missing from disk are simply absent, as TF Serving only logs them).
        """
        versions = frozenset(available)
        if self.kind == "all":
            return versions
        if self.kind == "specific":
            return versions & frozenset(self.versions)
        return frozenset(sorted(versions, reverse=True)[: self.num_versions])


DEFAULT_POLICY = VersionPolicy.latest()


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


def _bad_policy(value: object, why: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, f"invalid version policy {value!r}: {why}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
