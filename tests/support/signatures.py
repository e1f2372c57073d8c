"""Signature specs for codec and data-plane tests."""

from __future__ import annotations

from tfsgate.core.signatures import TensorSpec


def spec(key: str, dtype: str = "DT_FLOAT", shape: tuple[int, ...] | None = (-1, 1)) -> TensorSpec:
    return TensorSpec(key=key, tensor_name=f"{key}:0", dtype=dtype, shape=shape)
