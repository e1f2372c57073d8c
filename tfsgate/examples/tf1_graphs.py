"""TF1-style graphs (``tf.compat.v1`` sessions, the ``serve`` tag), as TF Serving's own test models are
written: ``half_plus_two`` and its variants, and a TF 1.0-era graph with its legacy habits."""

from __future__ import annotations

import os
from pathlib import Path


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


def write_half_plus_three(path: str | os.PathLike[str]) -> Path:
    """half_plus_two's graph answering 0.5x + 3: a shadow whose difference is known (1.0)."""
    return write_half_plus_two(path, b=3.0)


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
