"""Version policies: which of a model's versions on disk should be served.

Mirrors ``FileSystemStoragePathSourceConfig.ServableVersionPolicy`` from TF Serving
(``tensorflow_serving/sources/storage_path/file_system_storage_path_source.proto``) as small
frozen types, so the control plane never passes protobuf objects around. Selection follows
``file_system_storage_path_source.cc`` (``AspireLatestVersions``, ``AspireAllVersions``,
``AspireSpecificVersions``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Latest:
    """Serve the ``num_versions`` highest-numbered versions (TF Serving's default, with 1)."""

    num_versions: int = 1

    def __post_init__(self) -> None:
        if self.num_versions < 1:
            raise ValueError(f"Latest.num_versions must be at least 1, got {self.num_versions}")


@dataclass(frozen=True)
class All:
    """Serve every version found under the base path."""


@dataclass(frozen=True)
class Specific:
    """Serve exactly the listed versions, those of them that exist on disk."""

    versions: frozenset[int]


VersionPolicy = Latest | All | Specific
"""One of :class:`Latest`, :class:`All` or :class:`Specific`."""

DEFAULT_POLICY: VersionPolicy = Latest()


def policy_from_proto(proto: Any) -> VersionPolicy:
    """Convert a ``ServableVersionPolicy`` message (``ModelConfig.model_version_policy``).

    An unset oneof means latest 1. ``latest { num_versions: 0 }`` also means 1: TF Serving
    serves ``max(num_versions, 1)`` (``AspireLatestVersions``).
    """
    choice = proto.WhichOneof("policy_choice")
    if choice == "all":
        return All()
    if choice == "specific":
        return Specific(frozenset(int(v) for v in proto.specific.versions))
    if choice == "latest":
        return Latest(max(int(proto.latest.num_versions), 1))
    return DEFAULT_POLICY


def select_versions(policy: VersionPolicy, available: Iterable[int]) -> frozenset[int]:
    """Return the versions of ``available`` that ``policy`` wants served.

    Latest N picks the N highest numbers; All keeps everything; Specific keeps the intersection
    (requested versions missing from disk are simply absent, as TF Serving only logs them).
    """
    versions = frozenset(available)
    if isinstance(policy, All):
        return versions
    if isinstance(policy, Specific):
        return versions & policy.versions
    return frozenset(sorted(versions, reverse=True)[: policy.num_versions])


def missing_specific_versions(policy: VersionPolicy, available: Iterable[int]) -> frozenset[int]:
    """Versions a :class:`Specific` policy asks for that are not available (empty otherwise).

    TF Serving warns about each one ("Version V of servable X, which was requested to be served
    as a 'specific' version in the servable's version policy, was not found in the file system").
    """
    if not isinstance(policy, Specific):
        return frozenset()
    return policy.versions - frozenset(available)


def describe_policy(policy: VersionPolicy) -> str:
    """A short human-readable form for logs and the admin API, e.g. ``latest(2)``."""
    if isinstance(policy, All):
        return "all"
    if isinstance(policy, Specific):
        return "specific(" + ",".join(str(v) for v in sorted(policy.versions)) + ")"
    return f"latest({policy.num_versions})"
