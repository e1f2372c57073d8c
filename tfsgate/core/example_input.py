"""TF Serving's ``Input`` (classify, regress, multi-inference, warm-up records) as the serialized
tf.Examples a model is fed: one place for the gateway's gRPC door and the converter's warm-up.

With a context (``ExampleListWithContext``) each entry is the serialized context followed by the
serialized example, as TF Serving's ``InputToSerializedExampleTensor`` feeds them: parsing merges
the two (protobuf merging is concatenation), and an example's feature replaces the context's.
"""

from __future__ import annotations

from typing import Any


def serialized_examples(model_input: Any) -> list[bytes] | None:
    """The entries of an ``example_list`` or ``example_list_with_context``; None for any other
    kind (callers answer that as TF Serving does in their place)."""
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in model_input.example_list.examples]
    if kind == "example_list_with_context":
        listed = model_input.example_list_with_context
        context = listed.context.SerializeToString()
        return [context + e.SerializeToString() for e in listed.examples]
    return None
