"""The rollout tests' models: a binary classifier (for feedback metrics), a canary that fails and one
that is slow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_binary_classifier(
    path: str | os.PathLike[str], weight: float = 4.0, bias: float = 0.0
) -> Path:
    """A TF2 binary classifier: ``serving_default(x: float[-1,1]) -> probabilities = sigmoid(w*x+b)``.

    Two versions with different weights differ in accuracy on the same data; the feedback tests
    compare their online metrics with an offline computation.
    """
    import tensorflow as tf

    class Classifier(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            return {"probabilities": tf.sigmoid(weight * x + bias)}

    module = Classifier()
    out = Path(path)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    return out


def write_failing(path: str | os.PathLike[str], fail_above: float = 0.0) -> Path:
    """half_plus_two's predict signature whose runner raises when any ``x > fail_above``.

    ``serving_default(x: float[-1,1]) -> y = 0.5x + 2``; the check is a TF assertion, so the
    error comes from inside the runner, as a canary's bug would.
    """
    import tensorflow as tf

    class Failing(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            check = tf.debugging.assert_less_equal(x, fail_above, message="canary bug")
            with tf.control_dependencies([check]):
                return {"y": 0.5 * x + 2.0}

    module = Failing()
    out = Path(path)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    return out


def write_slow(path: str | os.PathLike[str], sleep_seconds: float = 0.2) -> Path:
    """half_plus_two's predict signature that waits ``sleep_seconds`` without using the CPU.

    The wait is tf.data's SleepDataset (a graph op, so it survives saving; tf.py_function would
    not): the other versions on a shared 2-core machine keep their speed.
    """
    import tensorflow as tf
    from tensorflow.python.data.experimental.ops import testing

    micros = int(sleep_seconds * 1e6)

    class Slow(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            waited = tf.data.Dataset.from_tensors(x).apply(testing.sleep(micros))
            return {"y": 0.5 * waited.get_single_element() + 2.0}

    module = Slow()
    out = Path(path)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    return out
