"""TF2 and Keras SavedModels: several inputs and outputs, unbatched signatures, tf.Example
signatures built with ``tf.function``, and the benchmarks' ``mlp`` and ``scale``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def write_keras_multi_io(path: str | os.PathLike[str]) -> Path:
    """Write a TF2 Keras SavedModel with two named float inputs, a string input and two outputs.

    ``serving_default(a: float[-1,2], b: float[-1,2], tag: string[-1]) ->
    {"sum": a + b (float[-1,2]), "tag_length": strings.length(tag) (int32[-1])}``, exported with
    ``keras.Model.export`` as Keras users do for TF Serving.
    """
    import keras
    import tensorflow as tf

    a = keras.Input(shape=(2,), name="a", dtype="float32")
    b = keras.Input(shape=(2,), name="b", dtype="float32")
    tag = keras.Input(shape=(), name="tag", dtype="string")
    total = keras.layers.Add(name="sum")([a, b])
    length = keras.layers.Lambda(tf.strings.length, name="tag_length", output_shape=())(tag)
    model = keras.Model(
        inputs={"a": a, "b": b, "tag": tag}, outputs={"sum": total, "tag_length": length}
    )
    out = Path(path)
    model.export(str(out), format="tf_saved_model", verbose=False)
    return out


def write_unbatched(path: str | os.PathLike[str]) -> Path:
    """Write a TF2 SavedModel whose signatures have no batch dimension.

    ``serving_default(v: float[3]) -> {"doubled": 2 * v}`` and
    ``scalar(s: float[]) -> {"plus_one": s + 1, "label": string[]}``.
    """
    import tensorflow as tf

    class Unbatched(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([3], tf.float32, name="v")])
        def double(self, v: Any) -> dict[str, Any]:
            return {"doubled": v * 2.0}

        @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="s")])
        def scalar(self, s: Any) -> dict[str, Any]:
            return {"plus_one": s + 1.0, "label": tf.strings.as_string(s, precision=1)}

    module = Unbatched()
    out = Path(path)
    signatures = {"serving_default": module.double, "scalar": module.scalar}
    tf.saved_model.save(module, str(out), signatures=signatures)
    return out


def write_tf2_examples(path: str | os.PathLike[str]) -> Path:
    """Write a TF2 ``tf.saved_model.save`` model whose Classify/Regress signatures are predict-named.

    ``tf.saved_model.save`` marks every signature ``tensorflow/serving/predict``; TF Serving runs
    Classify and Regress on them all the same unless ``--enable_signature_method_name_check``.
    Feature ``x`` of each serialized tf.Example, ``y = 0.5 * x + 2``:

    - ``serving_default(x: float[-1]) -> {"y"}``
    - ``classify_x_to_y(inputs: string[-1]) -> {"scores": float[-1, 1]}``
    - ``classify_classes(inputs) -> {"classes": string[-1, 2] ("low", "high"),
      "scores": float[-1, 2] (1 - s, s) with s = sigmoid(x)}``
    - ``regress_x_to_y(inputs) -> {"outputs": float[-1]}``
    - ``regress_named_y(inputs) -> {"y": float[-1]}`` (not a regression output name)
    - ``classify_named_examples(examples: string[-1]) -> {"scores"}`` (not the inputs name)
    - ``regress_float_inputs(inputs: float[-1]) -> {"outputs"}`` (a float "inputs", as
      TF Serving's own half_plus_two_tf2 has)
    """
    import tensorflow as tf

    def parse(serialized: Any) -> Any:
        spec = {"x": tf.io.FixedLenFeature([1], tf.float32)}
        return tf.reshape(tf.io.parse_example(serialized, spec)["x"], [-1])

    strings = tf.TensorSpec([None], tf.string)

    class Examples(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def predict(self, x: Any) -> dict[str, Any]:
            return {"y": 0.5 * x + 2.0}

        @tf.function(input_signature=[strings])
        def classify(self, inputs: Any) -> dict[str, Any]:
            return {"scores": tf.reshape(0.5 * parse(inputs) + 2.0, [-1, 1])}

        @tf.function(input_signature=[strings])
        def classify_classes(self, inputs: Any) -> dict[str, Any]:
            high = tf.sigmoid(parse(inputs))
            count = tf.shape(high)[0]
            labels = tf.tile(tf.constant([["low", "high"]]), [count, 1])
            return {"classes": labels, "scores": tf.stack([1.0 - high, high], axis=1)}

        @tf.function(input_signature=[strings])
        def regress(self, inputs: Any) -> dict[str, Any]:
            return {"outputs": 0.5 * parse(inputs) + 2.0}

        @tf.function(input_signature=[strings])
        def regress_named_y(self, inputs: Any) -> dict[str, Any]:
            return {"y": 0.5 * parse(inputs) + 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def classify_named_examples(self, examples: Any) -> dict[str, Any]:
            return {"scores": tf.reshape(parse(examples), [-1, 1])}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="inputs")])
        def regress_float_inputs(self, inputs: Any) -> dict[str, Any]:
            return {"outputs": 0.5 * inputs + 3.0}

    module = Examples()
    out = Path(path)
    signatures = {
        "serving_default": module.predict,
        "classify_x_to_y": module.classify,
        "classify_classes": module.classify_classes,
        "regress_x_to_y": module.regress,
        "regress_named_y": module.regress_named_y,
        "classify_named_examples": module.classify_named_examples,
        "regress_float_inputs": module.regress_float_inputs,
    }
    tf.saved_model.save(module, str(out), signatures=signatures)
    return out


def write_mlp(
    path: str | os.PathLike[str], width: int = 1024, layers: int = 3, seed: int = 7
) -> Path:
    """Write a TF2 Keras SavedModel: ``layers`` dense layers of ``width`` units (ReLU between).

    ``serving_default(x: float[-1, width]) -> {"output_0": float[-1, width]}``, exported with
    ``keras.Model.export``; seeded weights, so every run serves the same function. The benchmarks'
    model with real compute per row (3 x 1024 x 1024 multiply-adds), where batching pays.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(width,), name="x", dtype="float32")
    hidden = inputs
    for index in range(layers):
        activation = "relu" if index < layers - 1 else None
        hidden = keras.layers.Dense(width, activation=activation, name=f"dense_{index}")(hidden)
    model = keras.Model(inputs=inputs, outputs=hidden)
    out = Path(path)
    model.export(str(out), format="tf_saved_model", verbose=False)
    return out


def write_scale(path: str | os.PathLike[str], factor: float = 2.0) -> Path:
    """Write a TF2 SavedModel ``serving_default(x: float[-1, -1]) -> {"y": factor * x}``.

    Any row width: the benchmarks send one row of 1 to 262,144 floats (4 B to 1 MB) to measure
    payload size alone, with no batch split and next to no compute.
    """
    import tensorflow as tf

    class Scale(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
        def scale(self, x: Any) -> dict[str, Any]:
            return {"y": x * factor}

    module = Scale()
    out = Path(path)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.scale})
    return out
