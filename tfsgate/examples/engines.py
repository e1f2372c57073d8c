"""Models for the other engines: a version directory with ``model.tflite`` (``--prefer_tflite_model``)
and one that needs TF Text's ops (``--custom_op_libraries``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_tflite(
    path: str | os.PathLike[str], with_saved_model: bool = True, tf1: bool = False
) -> Path:
    """A version directory holding ``model.tflite`` converted by ``tf.lite.TFLiteConverter``.

    The TFLite model answers ``y = 0.5x + 2`` and ``z = 3x`` (x: float[-1, 1]). TF2 (default):
    converted from a SavedModel, so it carries the signature runner ``serving_default`` (x -> y, z);
    ``tf1``: converted from a TF1 session (``from_session``, as TF Serving's own TFLite test
    models), tensors ``x`` -> ``y`` and no signature runner. ``with_saved_model`` also writes a
    SavedModel beside it answering ``y = 0.5x + 3`` (x -> y), so a test sees which file was served.
    """
    import tempfile

    import tensorflow as tf

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if tf1:
        v1 = tf.compat.v1
        graph = tf.Graph()
        with graph.as_default(), v1.Session(graph=graph) as session:
            x = v1.placeholder(tf.float32, shape=[None, 1], name="x")
            y = tf.add(tf.multiply(x, 0.5), 2.0, name="y")
            converter = v1.lite.TFLiteConverter.from_session(session, [x], [y])
            model = converter.convert()
    else:

        class HalfPlusTwo(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
            def serve(self, x: Any) -> dict[str, Any]:
                return {"y": 0.5 * x + 2.0, "z": 3.0 * x}

        module = HalfPlusTwo()
        with tempfile.TemporaryDirectory() as staging:
            tf.saved_model.save(module, staging, signatures={"serving_default": module.serve})
            model = tf.lite.TFLiteConverter.from_saved_model(staging).convert()
    if with_saved_model:

        class HalfPlusThree(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
            def serve(self, x: Any) -> dict[str, Any]:
                return {"y": 0.5 * x + 3.0}

        saved = HalfPlusThree()
        tf.saved_model.save(saved, str(out), signatures={"serving_default": saved.serve})
    (out / "model.tflite").write_bytes(model)
    return out


def write_text_tokens(path: str | os.PathLike[str]) -> Path:
    """A SavedModel needing a custom op: ``serving_default(text: string[-1]) -> {"tokens": int64}``,
    the whitespace token count of each text, by TF Text's ``TFText>WhitespaceTokenizeWithOffsetsV2``
    (registered only by ``tensorflow_text``, as TF Serving users link it in)."""
    import tensorflow as tf
    import tensorflow_text as text

    class Tokens(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def count(self, texts: Any) -> dict[str, Any]:
            return {"tokens": text.WhitespaceTokenizer().tokenize(texts).row_lengths()}

    module = Tokens()
    out = Path(path)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.count})
    return out
