"""Request and response bodies of the admin API (pydantic, so OpenAPI documents them).

Versions are JSON integers here (this API is tfsgate's own, not TF Serving's, whose status JSON
renders versions as strings). Conversion from catalog entities lives in the ``from_*`` methods,
not in the route functions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from control_plane.catalog.entities import (
    PREVIOUS_STABLE_LABEL,
    STABLE_LABEL,
    Event,
    Model,
    ModelVersion,
)

VersionNumber = Field(ge=0, lt=2**63, description="TF Serving version number")
Runner = Literal["auto", "tensorflow", "onnxruntime"]
ModelSource = Literal["config", "admin", "retired"]


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not silently do less than asked."""

    model_config = ConfigDict(extra="forbid")


class SignatureRunnerOut(BaseModel):
    name: str
    runner: Literal["onnxruntime", "tensorflow", "tflite"] = Field(
        description="the engine serving this signature (tflite: the version's model.tflite,"
        " served with --prefer_tflite_model)"
    )
    max_abs_error: float | None = Field(
        description="worst |ONNX - TensorFlow| of the parity check (floats); null if not run"
    )
    fallback_reason: str = Field(description="why TensorFlow serves it; empty for onnxruntime")
    parity_cases: int = Field(description="generated inputs the parity check ran")


class WarmupOut(BaseModel):
    records: int = Field(description="warm-up requests replayed before the version was AVAILABLE")
    seconds: float


_RUNNERS = ("onnxruntime", "tflite")


def _signature_runners(runners: dict[str, Any]) -> list[SignatureRunnerOut]:
    found = runners.get("signatures") or {}
    return [
        SignatureRunnerOut(
            name=name,
            runner=data["runner"] if data.get("runner") in _RUNNERS else "tensorflow",
            max_abs_error=data.get("max_abs_error"),
            fallback_reason=str(data.get("fallback_reason", "")),
            parity_cases=int(data.get("parity_cases") or 0),
        )
        for name, data in sorted(found.items())
    ]


class SignatureStatsOut(BaseModel):
    inference_count: int = Field(description="rows answered")
    execution_count: int = Field(description="runner calls; below inference_count when batched")
    cache_hits: int
    cache_misses: int


class VersionStatsOut(BaseModel):
    version: int
    signatures: dict[str, SignatureStatsOut]


class ModelStatsOut(BaseModel):
    model: str
    versions: list[VersionStatsOut]


class VersionOut(BaseModel):
    model: str
    version: int
    state: str = Field(description="START, LOADING, AVAILABLE, UNLOADING, END or FAILED")
    state_reason: str
    source_path: str
    pin: Literal["load", "unload"] | None = Field(
        description="operator override of the version policy; null follows the policy"
    )
    labels: list[str] = Field(description="labels pointing at this version")
    updated_at: datetime
    signatures: list[SignatureRunnerOut] = Field(
        default_factory=list, description="which runner serves each signature, and why"
    )
    warmup: WarmupOut | None = None

    @classmethod
    def from_entity(cls, version: ModelVersion, labels: dict[str, int]) -> VersionOut:
        return cls(
            model=version.model,
            version=version.version,
            state=version.state.value,
            state_reason=version.state_reason,
            source_path=version.source_path,
            pin=None if version.pin is None else version.pin.value,
            labels=sorted(k for k, v in labels.items() if v == version.version),
            updated_at=version.updated_at,
            signatures=_signature_runners(version.runners),
            warmup=None
            if version.warmup_records is None
            else WarmupOut(records=version.warmup_records, seconds=version.warmup_seconds or 0.0),
        )


class VersionList(BaseModel):
    versions: list[VersionOut]


class ModelOut(BaseModel):
    name: str
    base_path: str
    policy: dict[str, Any] = Field(description='e.g. {"latest": {"num_versions": 1}}')
    platform: str
    source: ModelSource = Field(
        description="config: from flags or --model_config_file; admin: registered here; "
        "retired: in the catalog but no longer served"
    )
    labels: dict[str, int]
    traffic: dict[int, float]
    versions: list[VersionOut]
    runner: Runner = Field(
        description="auto: ONNX Runtime where the conversion passes its parity check, else "
        "TensorFlow; tensorflow or onnxruntime force one"
    )
    response_cache: bool = Field(description="Triton's response cache for this model")

    @classmethod
    def from_entities(
        cls,
        model: Model,
        source: ModelSource,
        versions: list[ModelVersion],
        labels: dict[str, int],
        traffic: dict[int, float],
    ) -> ModelOut:
        return cls(
            name=model.name,
            base_path=model.base_path,
            policy=model.policy.to_json(),
            platform=model.platform,
            source=source,
            labels=labels,
            traffic=traffic,
            versions=[VersionOut.from_entity(v, labels) for v in versions],
            runner=model.runner.value,
            response_cache=model.response_cache,
        )


class ModelList(BaseModel):
    models: list[ModelOut]


class RegisterModelIn(Strict):
    name: str = Field(min_length=1, max_length=255, pattern=r"^[^/\s:]+$")
    base_path: str = Field(min_length=1, description="absolute, inside the model roots")
    policy: dict[str, Any] = Field(
        default_factory=lambda: {"latest": {"num_versions": 1}},
        description="TF Serving's ServableVersionPolicy in JSON: latest, all or specific",
    )


class ModelSettingsIn(Strict):
    runner: Runner | None = Field(
        default=None,
        description="auto, tensorflow or onnxruntime; onnxruntime is refused while a served "
        "version has a signature that failed its parity check or conversion",
    )
    response_cache: bool | None = None


class ImportVersionIn(Strict):
    source_path: str = Field(
        min_length=1, description="SavedModel directory, absolute, inside the model roots"
    )
    version: int | None = Field(
        default=None, ge=0, lt=2**63, description="version number; default: highest known + 1"
    )


class LabelIn(Strict):
    version: int = VersionNumber


class LabelsOut(BaseModel):
    model: str
    labels: dict[str, int]


class PromoteIn(Strict):
    version: int = VersionNumber
    expected_stable: int | None = Field(
        default=None,
        description="the stable version the caller saw (null: none yet); when omitted, the "
        "stable the server reads as the move begins",
    )


class RollbackIn(Strict):
    expected_stable: int | None = Field(default=None, description="as for promote")


class StableOut(BaseModel):
    model: str
    stable: int | None
    previous_stable: int | None

    @classmethod
    def from_labels(cls, model: str, labels: dict[str, int]) -> StableOut:
        return cls(
            model=model,
            stable=labels.get(STABLE_LABEL),
            previous_stable=labels.get(PREVIOUS_STABLE_LABEL),
        )


class TrafficIn(Strict):
    weights: dict[str, float] = Field(
        description='relative weights by version or label, e.g. {"1": 90, "2": 10} or '
        '{"stable": 90, "canary": 10}; {} removes the split'
    )


class TrafficOut(BaseModel):
    model: str
    weights: dict[str, float]


class EventOut(BaseModel):
    id: int
    time: datetime
    actor: str
    action: str
    model: str
    version: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def from_entity(cls, event: Event) -> EventOut:
        return cls(
            id=event.id,
            time=event.time,
            actor=event.actor,
            action=event.action,
            model=event.model,
            version=event.version,
            before=event.before,
            after=event.after,
        )


class EventList(BaseModel):
    events: list[EventOut]


class ErrorOut(BaseModel):
    error: str
    current: StableOut | None = Field(default=None, description="on a lost promote/rollback race")
