"""Helpers for the converter tests (imported, not fixtures)."""

from __future__ import annotations

from tfsgate.core import protos


def example(**features: float) -> bytes:
    """A serialized tf.Example with float features, built from the proto alone."""
    message = protos.example_pb2.Example()
    for name, value in features.items():
        message.features.feature[name].float_list.value.append(value)
    return bytes(message.SerializeToString())
