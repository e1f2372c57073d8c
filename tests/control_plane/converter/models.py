"""SavedModels for the converter tests; run as a module so TensorFlow loads in a child process.

The test process stays without TensorFlow (``tfsgate.protos`` may have registered a bare
``tensorflow`` package there, and TensorFlow would add 560 MB to every measurement).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tfsgate.examples import (
    write_half_plus_two,
    write_keras_multi_io,
    write_legacy_tf1,
    write_mlp,
    write_unbatched,
)

# name -> version directory, relative to the base directory the models are written into.
MODELS = {
    "half_plus_two": "half_plus_two/123",
    "multi_io": "multi_io/1",
    "unknown_rank": "unknown_rank/1",
    "unbatched": "unbatched/1",
    "legacy_tf1": "legacy_tf1/1",
    "small_mlp": "small_mlp/1",
}


def write_unknown_rank_classifier(path: Path) -> Path:
    """A classify signature over tf.Example whose ``scores`` output has unknown rank.

    ``scores = reshape(0.5 * x + 2, concat([shape(inputs), [1]]))``: [N, 1] at run time, but the
    reshape's target has unknown length, so the SignatureDef records no rank at all.
    """
    import tensorflow as tf

    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        serialized = tf1.placeholder(tf.string, name="tf_example")
        features = tf1.io.parse_example(serialized, {"x": tf1.io.FixedLenFeature([1], tf.float32)})
        y = features["x"] * 0.5 + 2.0
        scores = tf.reshape(y, tf.concat([tf.shape(serialized), [1]], 0), name="scores")
        info = tf1.saved_model.build_tensor_info
        signature = tf1.saved_model.signature_def_utils.build_signature_def(
            {"inputs": info(serialized)}, {"scores": info(scores)}, "tensorflow/serving/classify"
        )
        with tf1.Session(graph=graph):
            builder = tf1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                tf1.get_default_session(),
                ["serve"],
                signature_def_map={"serving_default": signature},
            )
            builder.save()
    return path


def main(base: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    write_half_plus_two(base / MODELS["half_plus_two"])
    write_keras_multi_io(base / MODELS["multi_io"])
    write_unknown_rank_classifier(base / MODELS["unknown_rank"])
    write_unbatched(base / MODELS["unbatched"])
    write_legacy_tf1(base / MODELS["legacy_tf1"])
    write_mlp(base / MODELS["small_mlp"], width=64, layers=2)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
