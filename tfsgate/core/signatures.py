"""Our own frozen description of a SavedModel's signatures, shared by control plane and gateway.

Built once from the ``SignatureDef`` protos in ``saved_model.pb`` (by the converter), stored in the
catalog as JSON, and published to gateways in the routing table, so gateways never read model files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class TensorSpec:
    """One signature input or output. ``shape`` is None for unknown rank; -1 marks unknown dims."""

    key: str  # the signature's name for it, e.g. "x"
    tensor_name: str  # the graph tensor, e.g. "x:0"
    dtype: str  # TF DataType enum name, e.g. "DT_FLOAT"
    shape: tuple[int, ...] | None

    @property
    def batched(self) -> bool:
        """True when the leading dimension is unknown (-1): requests may stack along it."""
        return bool(self.shape) and self.shape is not None and self.shape[0] == -1

    def travels_with_unit_dim(self, batched: bool) -> bool:
        """True when Triton carries this tensor with an extra trailing 1 (``reshape: []``).

        Triton's config cannot state a scalar, nor a batched tensor with no other dimension, so
        such tensors travel as ``[1]`` / ``[batch, 1]``; the converter and the data plane agree here.
        """
        return self.shape is not None and len(self.shape) == (1 if batched else 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "tensor_name": self.tensor_name,
            "dtype": self.dtype,
            "shape": None if self.shape is None else list(self.shape),
        }

    @classmethod
    def from_json(cls, key: str, data: dict[str, Any]) -> TensorSpec:
        shape = data.get("shape")
        return cls(
            key=key,
            tensor_name=data["tensor_name"],
            dtype=data["dtype"],
            shape=None if shape is None else tuple(int(d) for d in shape),
        )


@dataclass(frozen=True)
class SignatureSpec:
    name: str
    method_name: str
    inputs: dict[str, TensorSpec] = field(default_factory=dict)
    outputs: dict[str, TensorSpec] = field(default_factory=dict)

    @property
    def batched(self) -> bool:
        """Every input and output has a leading -1: Triton may batch it (max_batch_size > 0)."""
        tensors = [*self.inputs.values(), *self.outputs.values()]
        return bool(tensors) and all(t.batched for t in tensors)

    def to_json(self) -> dict[str, Any]:
        return {
            "method_name": self.method_name,
            "inputs": {k: v.to_json() for k, v in sorted(self.inputs.items())},
            "outputs": {k: v.to_json() for k, v in sorted(self.outputs.items())},
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> SignatureSpec:
        return cls(
            name=name,
            method_name=data.get("method_name", ""),
            inputs={k: TensorSpec.from_json(k, v) for k, v in data.get("inputs", {}).items()},
            outputs={k: TensorSpec.from_json(k, v) for k, v in data.get("outputs", {}).items()},
        )


def signatures_to_json(signatures: dict[str, SignatureSpec]) -> dict[str, Any]:
    return {name: sig.to_json() for name, sig in sorted(signatures.items())}


def signatures_from_json(data: dict[str, Any]) -> dict[str, SignatureSpec]:
    return {name: SignatureSpec.from_json(name, sig) for name, sig in data.items()}
