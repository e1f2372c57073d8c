"""Serialized tf.Examples for tests, built from the proto alone (no TensorFlow in the test process)."""

from __future__ import annotations

from tfsgate.core import protos


def example(**features: float) -> bytes:
    """A serialized tf.Example with float features, built from the proto alone."""
    message = protos.example_pb2.Example()
    for name, value in features.items():
        message.features.feature[name].float_list.value.append(value)
    return bytes(message.SerializeToString())
