"""SavedModels written with TensorFlow: the example ``make serve`` serves and the tests' factory.

``half_plus_two`` mirrors TF Serving's own test model (TF1-style graph, ``serve`` tag): ``y = a*x + b``
with ``serving_default`` (x -> y), ``classify_x_to_y`` and ``regress_x_to_y`` over serialized
``tf.Example`` protos (feature ``x``), ``regress_x_to_y2`` (y2 = a*x + c) and ``regress_x2_to_y3``
(float x2 -> y3 = a*x2 + c). ``mlp`` and ``scale`` are the benchmarks' models; half_plus_three, a
binary classifier, a failing and a slow canary are the rollout tests'; ``tflite`` (a version directory
with ``model.tflite``) and ``text_tokens`` (needs TF Text's ops) test ``--prefer_tflite_model`` and
``--custom_op_libraries``. Run as
``python -m tfsgate.examples DIR [--version N] [--kind KIND]``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_half_plus_two(
    path: str | os.PathLike[str], a: float = 0.5, b: float = 2.0, c: float = 3.0
) -> Path:
    """Write a TF1-style half_plus_two SavedModel (a*x + b) at ``path`` (a version directory)."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    out = Path(path)
    graph = tf.Graph()
    with graph.as_default():
        serialized = tf1.placeholder(tf.string, name="tf_example")
        features = tf1.io.parse_example(serialized, {"x": tf1.io.FixedLenFeature([1], tf.float32)})
        x_from_example = tf.reshape(features["x"], [-1, 1], name="x_from_example")
        x = tf1.placeholder(tf.float32, shape=[None, 1], name="x")
        x2 = tf1.placeholder(tf.float32, shape=[None, 1], name="x2")
        a_var = tf1.Variable(a, name="a")
        b_var = tf1.Variable(b, name="b")
        c_var = tf1.Variable(c, name="c")
        y = tf.add(tf.multiply(a_var, x), b_var, name="y")
        y_example = tf.add(tf.multiply(a_var, x_from_example), b_var, name="y_from_example")
        y2 = tf.add(tf.multiply(a_var, x_from_example), c_var, name="y2")
        y3 = tf.add(tf.multiply(a_var, x2), c_var, name="y3")
        info = tf1.saved_model.build_tensor_info
        build = tf1.saved_model.signature_def_utils.build_signature_def
        signatures = {
            "serving_default": build({"x": info(x)}, {"y": info(y)}, "tensorflow/serving/predict"),
            "classify_x_to_y": build(
                {"inputs": info(serialized)},
                {"scores": info(y_example)},
                "tensorflow/serving/classify",
            ),
            "regress_x_to_y": build(
                {"inputs": info(serialized)},
                {"outputs": info(y_example)},
                "tensorflow/serving/regress",
            ),
            "regress_x_to_y2": build(
                {"inputs": info(serialized)}, {"outputs": info(y2)}, "tensorflow/serving/regress"
            ),
            "regress_x2_to_y3": build(
                {"inputs": info(x2)}, {"outputs": info(y3)}, "tensorflow/serving/regress"
            ),
        }
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            builder = tf1.saved_model.Builder(str(out))
            builder.add_meta_graph_and_variables(
                session, [tf1.saved_model.tag_constants.SERVING], signature_def_map=signatures
            )
            builder.save()
    return out


def write_warmup_requests(path: str | os.PathLike[str], unknown_signature: bool = False) -> Path:
    """Add TF Serving's warm-up file to the half_plus_two version at ``path``: one record each of
    predict, classify, regress and multi_inference (``assets.extra/tf_serving_warmup_requests``,
    a TFRecord of PredictionLog). ``unknown_signature`` adds a record naming a signature the
    model lacks, which makes the version fail to load."""
    import tensorflow as tf
    from tensorflow_serving.apis import (
        classification_pb2,
        inference_pb2,
        predict_pb2,
        prediction_log_pb2,
        regression_pb2,
    )

    def examples(target: Any) -> None:
        for value in (1.0, 2.0):
            target.example_list.examples.add().features.feature["x"].float_list.value.append(value)

    logs = []
    predict = predict_pb2.PredictRequest()
    predict.model_spec.name = "half_plus_two"
    predict.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0], [2.0], [3.0]], tf.float32))
    logs.append(prediction_log_pb2.PredictionLog(predict_log={"request": predict}))
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.signature_name = "classify_x_to_y"
    examples(classify.input)
    logs.append(prediction_log_pb2.PredictionLog(classify_log={"request": classify}))
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.signature_name = "regress_x_to_y"
    examples(regress.input)
    logs.append(prediction_log_pb2.PredictionLog(regress_log={"request": regress}))
    multi = inference_pb2.MultiInferenceRequest()
    for signature, method in (
        ("regress_x_to_y", "tensorflow/serving/regress"),
        ("regress_x_to_y2", "tensorflow/serving/regress"),
    ):
        task = multi.tasks.add()
        task.model_spec.signature_name = signature
        task.method_name = method
    examples(multi.input)
    logs.append(prediction_log_pb2.PredictionLog(multi_inference_log={"request": multi}))
    if unknown_signature:
        missing = predict_pb2.PredictRequest()
        missing.model_spec.signature_name = "no_such_signature"
        missing.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0]], tf.float32))
        logs.append(prediction_log_pb2.PredictionLog(predict_log={"request": missing}))
    target = Path(path) / "assets.extra" / "tf_serving_warmup_requests"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return target


def write_legacy_tf1(path: str | os.PathLike[str], a: float = 0.5, b: float = 3.0) -> Path:
    """Write a TF1 SavedModel with the habits of TF Serving's ``saved_model_half_plus_three``.

    ``serving_default`` (x -> y = a*x + b, x fed at an Identity of a ParseExample output),
    ``tensorflow/serving/regress`` (examples -> y) and ``regress_level`` (examples -> y plus the
    line number of the string feature ``level``, default "mid", in the asset ``vocab.txt``, through a
    hash table initialized by the main op). As TF 1.0 saved it: the examples placeholder has a
    scalar shape although it is fed a vector, and the regress signature declares the examples
    DT_FLOAT although the placeholder is DT_STRING.
    """
    import tempfile

    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    tf1 = tf.compat.v1
    out = Path(path)
    graph = tf.Graph()
    with graph.as_default(), tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("low\nmid\nhigh\n")
        asset = tf.constant(str(vocab), name="vocab_path")
        tf1.add_to_collection(tf1.GraphKeys.ASSET_FILEPATHS, asset)
        lines = tf1.lookup.TextFileInitializer(
            asset,
            tf.string,
            tf1.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf1.lookup.TextFileIndex.LINE_NUMBER,
        )
        table = tf1.lookup.StaticHashTable(lines, -1)
        serialized = tf1.placeholder(tf.string, name="tf_example")
        features = tf1.io.parse_example(
            serialized,
            {
                "x": tf1.io.FixedLenFeature([1], tf.float32),
                "level": tf1.io.FixedLenFeature([1], tf.string, default_value=["mid"]),
            },
        )
        a_var = tf1.Variable(a, name="a")
        b_var = tf1.Variable(b, name="b")
        x = tf.identity(features["x"], name="x")
        y = tf.add(a_var * x, b_var, name="y")
        level = tf.cast(table.lookup(features["level"]), tf.float32)
        y_level = tf.identity(y + level, name="y_level")
        info = tf1.saved_model.build_tensor_info
        build = tf1.saved_model.signature_def_utils.build_signature_def
        regress = "tensorflow/serving/regress"
        signatures = {
            "serving_default": build({"x": info(x)}, {"y": info(y)}, "tensorflow/serving/predict"),
            regress: build({"inputs": info(serialized)}, {"outputs": info(y)}, regress),
            "regress_level": build(
                {"inputs": info(serialized)}, {"outputs": info(y_level)}, regress
            ),
        }
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            builder = tf1.saved_model.Builder(str(out))
            builder.add_meta_graph_and_variables(
                session,
                [tf1.saved_model.tag_constants.SERVING],
                signature_def_map=signatures,
                assets_collection=tf1.get_collection(tf1.GraphKeys.ASSET_FILEPATHS),
                main_op=tf1.tables_initializer(),
            )
            builder.save()
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((out / "saved_model.pb").read_bytes())
    meta_graph = saved_model.meta_graphs[0]
    for node in meta_graph.graph_def.node:
        if node.name == "tf_example":
            node.attr["shape"].shape.Clear()  # scalar
    declared = meta_graph.signature_def[regress].inputs["inputs"]
    declared.dtype = tf.float32.as_datatype_enum
    declared.ClearField("tensor_shape")
    (out / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    return out


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


def write_half_plus_three(path: str | os.PathLike[str]) -> Path:
    """half_plus_two's graph answering 0.5x + 3: a shadow whose difference is known (1.0)."""
    return write_half_plus_two(path, b=3.0)


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


_WRITERS: dict[str, Callable[[Path], Path]] = {
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_path", help="model base path; the version directory goes inside it")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--kind", choices=sorted(_WRITERS), default="half_plus_two")
    args = parser.parse_args()
    target = Path(args.base_path) / str(args.version)
    if (target / "saved_model.pb").exists():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _WRITERS[args.kind](target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
