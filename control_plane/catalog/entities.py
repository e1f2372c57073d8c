"""Frozen value types returned by the catalog store.

They are separate from the ORM rows so that no SQLAlchemy object (with its session, lazy loads and
mutability) ever leaves the store; callers get plain immutable data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Literal

from tfsgate.core.naming import is_shared, tensor_prefix, triton_model_name
from tfsgate.core.version_policy import VersionPolicy

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
    SET_SHADOW = "set_shadow"
    SET_THRESHOLDS = "set_thresholds"
    ROLLOUT_START = "rollout_start"
    ROLLOUT_STEP = "rollout_step"
    ROLLOUT_ROLLBACK = "rollout_rollback"
    ROLLOUT_COMPLETE = "rollout_complete"
    ROLLOUT_ABORT = "rollout_abort"
    SET_MODEL_VERSION_RUNNERS = "set_model_version_runners"
    SET_MODEL_VERSION_WARMUP = "set_model_version_warmup"


class Runner(StrEnum):
    """A model's runner setting: which engine serves its signatures (issue 8)."""

    AUTO = "auto"  # ONNX Runtime where the conversion passes its parity check, else TensorFlow
    TENSORFLOW = "tensorflow"
    ONNXRUNTIME = "onnxruntime"  # every signature must pass, else the version fails


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
    runner: Runner = Runner.AUTO
    response_cache: bool = False


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
    # Signature name -> {"runner", "max_abs_error", "fallback_reason", "parity_cases"}, and
    # under "" the runner setting the version was converted with (see SignatureRunner).
    runners: dict[str, Any] = field(default_factory=dict, hash=False)
    warmup_records: int | None = None
    warmup_seconds: float | None = None

    def triton_models(self) -> dict[str, str]:
        """Signature name -> the Triton model serving it: where the converter wrote it (its
        evidence names them, ``SavedModelConverter.convert``), else a model of its own (versions
        converted before shared models existed)."""
        placed = self.runners.get("triton_models") or {}
        return {s: placed.get(s) or triton_model_name(self.model, s) for s in self.signatures}

    def tensor_prefixes(self) -> dict[str, str]:
        """Signature name -> its tensors' prefix, for those in a shared Triton model."""
        return {
            s: tensor_prefix(s)
            for s, name in self.triton_models().items()
            if is_shared(self.model, name)
        }


@dataclass(frozen=True)
class StableMove:
    """What a promote or rollback left: the version now ``stable`` and ``previous_stable``."""

    version: ModelVersion
    previous_stable: int | None


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


@dataclass(frozen=True)
class Shadow:
    model: str
    version: int
    percent: float
    tolerance: float


@dataclass(frozen=True)
class RouteState:
    """What gateways route one model by, from one snapshot (``store.rollouts.route_state``)."""

    versions: tuple[ModelVersion, ...]
    labels: dict[str, int] = field(hash=False)
    traffic: dict[int, float] = field(hash=False)  # labels resolved to versions
    shadow: Shadow | None


@dataclass(frozen=True)
class RolloutRecord:
    """A rollout as the catalog keeps it (the guard's ``Rollout`` plus times)."""

    id: int
    model: str
    candidate: int
    baseline: int | None
    steps: tuple[int, ...]
    interval_seconds: float
    step_index: int
    state: str
    reason: str
    started_at: datetime
    step_started_at: datetime
    finished_at: datetime | None

    @property
    def weight(self) -> int:
        if self.state in ("rolled_back", "aborted"):
            return 0
        return self.steps[min(self.step_index, len(self.steps) - 1)]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "steps": list(self.steps),
            "interval_seconds": self.interval_seconds,
            "step_index": self.step_index,
            "weight": self.weight,
            "state": self.state,
            "reason": self.reason,
            "started_at": self.started_at.isoformat(),
            "step_started_at": self.step_started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }
