"""SavedModels written with TensorFlow: the example ``make serve`` serves and the tests' factory.

``half_plus_two`` mirrors TF Serving's own test model (TF1-style graph, ``serve`` tag): ``y = a*x + b``
with ``serving_default`` (x -> y), ``classify_x_to_y`` and ``regress_x_to_y`` over serialized
``tf.Example`` protos (feature ``x``), ``regress_x_to_y2`` (y2 = a*x + c) and ``regress_x2_to_y3``
(float x2 -> y3 = a*x2 + c). ``mlp`` and ``scale`` are the benchmarks' models; half_plus_three, a
binary classifier, a failing and a slow canary are the rollout tests'; ``tflite`` (a version directory
with ``model.tflite``) and ``text_tokens`` (needs TF Text's ops) test ``--prefer_tflite_model`` and
``--custom_op_libraries``. Run as ``python -m tfsgate.examples DIR [--version N] [--kind KIND]``.

By kind: ``tf1_graphs.py``, ``tf2_models.py``, ``canaries.py`` (rollouts), ``engines.py`` (TFLite,
custom ops), ``warmup.py`` (warm-up records). Every writer imports TensorFlow inside itself, so
importing this package does not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tfsgate.examples.canaries import write_binary_classifier, write_failing, write_slow
from tfsgate.examples.engines import write_text_tokens, write_tflite
from tfsgate.examples.tf1_graphs import write_half_plus_three, write_half_plus_two, write_legacy_tf1
from tfsgate.examples.tf2_models import (
    write_keras_multi_io,
    write_mlp,
    write_scale,
    write_tf2_examples,
    write_unbatched,
)
from tfsgate.examples.warmup import write_warmup_requests

__all__ = [
    "WRITERS",
    "write_binary_classifier",
    "write_failing",
    "write_half_plus_three",
    "write_half_plus_two",
    "write_keras_multi_io",
    "write_legacy_tf1",
    "write_mlp",
    "write_scale",
    "write_slow",
    "write_text_tokens",
    "write_tf2_examples",
    "write_tflite",
    "write_unbatched",
    "write_warmup_requests",
]

# The kinds ``python -m tfsgate.examples --kind`` writes.
WRITERS: dict[str, Callable[[Path], Path]] = {
    "half_plus_two": write_half_plus_two,
    "mlp": write_mlp,
    "scale": write_scale,
    "half_plus_three": write_half_plus_three,
    "binary_classifier": write_binary_classifier,
    "failing": write_failing,
    "slow": write_slow,
    "tflite": write_tflite,
    "text_tokens": write_text_tokens,
}
