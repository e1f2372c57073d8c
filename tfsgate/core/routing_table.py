"""The routing table: the contract the control plane publishes and gateways read.

The control plane builds a new immutable :class:`RoutingTable` after every change (versions, their
states and signatures, labels, traffic weights) and publishes it; a gateway swaps its reference
atomically and never queries SQL per request. Gateways in other processes get it as JSON
(``to_json`` / ``from_json``). Turning a request into a :class:`Target` (labels, weights, latest)
is the gateway's resolver (``gateway/routing.py``); this module only holds the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from tfsgate.core.signatures import SignatureSpec, signatures_from_json, signatures_to_json

AVAILABLE = "AVAILABLE"


@dataclass(frozen=True)
class VersionRoute:
    version: int
    state: str  # the catalog's VersionState name
    reason: str = ""
    signatures: dict[str, SignatureSpec] = field(default_factory=dict)
    triton_models: dict[str, str] = field(default_factory=dict)  # signature -> Triton model
    batched: dict[str, bool] = field(default_factory=dict)  # signature -> max_batch_size > 0
    # signature -> its tensors' name prefix in a shared Triton model (naming.tensor_prefix);
    # absent: the signature has a Triton model of its own and its tensors keep their keys.
    prefixes: dict[str, str] = field(default_factory=dict)
    # Targets made so far, by (model, signature): the version is immutable, so each is made once
    # (a request's resolution then allocates nothing).
    _targets: dict[tuple[str, str], Target] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def available(self) -> bool:
        return self.state == AVAILABLE

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "state": self.state,
            "reason": self.reason,
            "signatures": signatures_to_json(self.signatures),
            "triton_models": dict(sorted(self.triton_models.items())),
            "batched": dict(sorted(self.batched.items())),
            "prefixes": dict(sorted(self.prefixes.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VersionRoute:
        return cls(
            version=int(data["version"]),
            state=data["state"],
            reason=data.get("reason", ""),
            signatures=signatures_from_json(data.get("signatures", {})),
            triton_models=dict(data.get("triton_models", {})),
            batched={k: bool(v) for k, v in data.get("batched", {}).items()},
            prefixes=dict(data.get("prefixes", {})),
        )

    def target(self, model: str, name: str) -> Target | None:
        """Signature ``name`` of this version as a request's target (None: no such signature)."""
        made = self._targets.get((model, name))
        if made is not None:
            return made
        signature = self.signatures.get(name)
        triton_model = self.triton_models.get(name)
        if signature is None or triton_model is None:
            return None
        made = self._targets[(model, name)] = Target(
            model,
            self,
            signature,
            triton_model,
            self.batched.get(name, False),
            self.prefixes.get(name, ""),
        )
        return made


@dataclass(frozen=True)
class ShadowRoute:
    """A share of the model's traffic copied to ``version`` in the background."""

    version: int
    percent: float
    tolerance: float = 1e-6

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "percent": self.percent, "tolerance": self.tolerance}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShadowRoute:
        return cls(int(data["version"]), float(data["percent"]), float(data["tolerance"]))


@dataclass(frozen=True)
class LoggingRoute:
    """TF Serving's ``logging_config`` of a model (sampling_config, log_collector_config)."""

    sampling_rate: float
    filename_prefix: str = ""
    collector_type: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "sampling_rate": self.sampling_rate,
            "filename_prefix": self.filename_prefix,
            "collector_type": self.collector_type,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoggingRoute:
        return cls(
            float(data["sampling_rate"]),
            data.get("filename_prefix", ""),
            data.get("collector_type", ""),
        )


@dataclass(frozen=True)
class ModelRoute:
    name: str
    versions: dict[int, VersionRoute] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    # version -> weight for requests naming neither version nor label; empty = latest. Weights
    # given over labels are resolved to their versions by the control plane.
    traffic: dict[int, float] = field(default_factory=dict)
    shadow: ShadowRoute | None = None
    logging: LoggingRoute | None = None
    guarded: bool = False  # a rollout is running: gateways keep per-version window stats

    def to_json(self) -> dict[str, Any]:
        # JSON object keys are strings: versions travel as lists, traffic as [version, weight].
        return {
            "name": self.name,
            "versions": [self.versions[v].to_json() for v in sorted(self.versions)],
            "labels": dict(sorted(self.labels.items())),
            "traffic": [[v, w] for v, w in sorted(self.traffic.items())],
            "shadow": self.shadow.to_json() if self.shadow else None,
            "logging": self.logging.to_json() if self.logging else None,
            "guarded": self.guarded,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelRoute:
        versions = [VersionRoute.from_json(v) for v in data.get("versions", [])]
        shadow, logging = data.get("shadow"), data.get("logging")
        return cls(
            name=data["name"],
            versions={v.version: v for v in versions},
            labels={k: int(v) for k, v in data.get("labels", {}).items()},
            traffic={int(v): float(w) for v, w in data.get("traffic", [])},
            shadow=ShadowRoute.from_json(shadow) if shadow else None,
            logging=LoggingRoute.from_json(logging) if logging else None,
            guarded=bool(data.get("guarded", False)),
        )


@dataclass(frozen=True)
class Target:
    """A resolved request: which version and signature, and where Triton serves it."""

    model: str
    version: VersionRoute
    signature: SignatureSpec
    triton_model: str
    batched: bool
    prefix: str = ""  # of its tensor names in the Triton model (VersionRoute.prefixes)

    # What the data plane derives from a target, once per target rather than per request.
    @cached_property
    def unit_inputs(self) -> frozenset[str]:
        """Inputs that travel to Triton with a trailing 1 (``TensorSpec.travels_with_unit_dim``)."""
        inputs = self.signature.inputs
        return frozenset(k for k, s in inputs.items() if s.travels_with_unit_dim(self.batched))

    @cached_property
    def all_outputs(self) -> tuple[tuple[str, str, bool], ...]:
        """Every output, sorted by key: (key, its name in Triton, travels with a trailing 1)."""
        return self.outputs_of(sorted(self.signature.outputs))

    def outputs_of(self, keys: list[str]) -> tuple[tuple[str, str, bool], ...]:
        outputs = self.signature.outputs
        return tuple(
            (k, self.prefix + k, outputs[k].travels_with_unit_dim(self.batched)) for k in keys
        )


@dataclass(frozen=True)
class RoutingTable:
    generation: int = 0
    models: dict[str, ModelRoute] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "models": [self.models[name].to_json() for name in sorted(self.models)],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoutingTable:
        models = [ModelRoute.from_json(m) for m in data.get("models", [])]
        return cls(generation=int(data.get("generation", 0)), models={m.name: m for m in models})


class TablePublisher(Protocol):
    """Where the control plane hands each new table (the gateway's router, in one process)."""

    def publish(self, table: RoutingTable) -> None: ...
