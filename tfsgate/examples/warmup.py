"""TF Serving's warm-up records (``assets.extra/tf_serving_warmup_requests``) for a SavedModel."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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
