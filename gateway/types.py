"""The small types that cross the data plane (frozen values, and the hold a call occupies). No
protobuf, FastAPI or tritonclient here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tfsgate.core.signatures import SignatureSpec

Tensors = dict[str, np.ndarray]


class Hold(Protocol):
    """What a call occupies in the gateway while Triton runs it (a coalescer's lane). Triton runs
    a call whose caller gave up to its end (triton_http.py, triton_grpc.py): an endpoint that
    keeps track of such a call says ``keep`` before the caller's error is raised, then
    ``release`` once Triton is done with it (its answer read and dropped, or its connection
    gone). An endpoint that loses track of it (a connection closed) says nothing."""

    def keep(self) -> None: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class ModelRef:
    """What a request names: a model and at most one of version or label, plus a signature.

    ``signature`` "" means TF Serving's default (``serving_default``).
    """

    name: str
    version: int | None = None
    label: str | None = None
    signature: str = ""
    route_key: str = ""  # X-Route-Key / x-route-key: keeps a caller on one version of a split

    def with_signature(self, signature: str) -> ModelRef:
        """This ref naming ``signature`` (dataclasses.replace, without its per-call cost)."""
        if signature == self.signature:  # the usual request names none: nothing to make
            return self
        return ModelRef(self.name, self.version, self.label, signature, self.route_key)

    def describe(self) -> str:
        """TF Serving's spelling of the request in "Servable not found" errors."""
        if self.version is not None:
            return f"Specific({self.name}, {self.version})"
        if self.label is not None:
            return f"Label({self.name}, {self.label})"
        return f"Latest({self.name})"


@dataclass(frozen=True)
class ServedSpec:
    """The effective model spec of an answer: TF Serving echoes it in every response."""

    name: str
    version: int
    signature: str


@dataclass(frozen=True)
class PredictResult:
    spec: ServedSpec
    outputs: Tensors
    signature: SignatureSpec  # encoders need the declared output dtypes


# Decodes a request's tensors once the signature is known (dtypes come from the signature).
InputDecoder = Callable[[SignatureSpec], Tensors]


@dataclass(frozen=True)
class ClassifyResult:
    spec: ServedSpec
    classes: list[list[tuple[str, float]]]


@dataclass(frozen=True)
class RegressResult:
    spec: ServedSpec
    values: list[float]


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""


@dataclass(frozen=True)
class ModelMetadata:
    spec: ServedSpec
    signatures: dict[str, SignatureSpec] = field(default_factory=dict)
