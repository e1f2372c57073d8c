"""Classify and Regress over a signature, with TF Serving's checks and texts.

Follows ``servables/tensorflow/classifier.cc`` and ``regressor.cc``: the signature method name is
checked only with ``--enable_signature_method_name_check`` (TF2 ``tf.saved_model.save`` marks every
signature ``tensorflow/serving/predict``, and TF Serving runs Classify on it all the same); the
tensors are found by their signature keys (aliases), ``inputs`` for the serialized examples,
``classes``/``scores`` or ``outputs`` for the answer; then the output tensors are checked against
the number of examples. Every failure is INVALID_ARGUMENT except a missing regression output after
the run (FAILED_PRECONDITION), as there.
"""

from __future__ import annotations

import numpy as np
from google.protobuf import text_format

from tfsgate.core import dtypes, protos
from tfsgate.core.signatures import CLASSIFY_METHOD, REGRESS_METHOD, SignatureSpec
from tfsgate.core.status import Code, ServingError, invalid_argument

CLASSIFY_INPUTS = "inputs"  # kClassifyInputs
CLASSIFY_CLASSES = "classes"  # kClassifyOutputClasses
CLASSIFY_SCORES = "scores"  # kClassifyOutputScores
REGRESS_INPUTS = "inputs"  # kRegressInputs
REGRESS_OUTPUTS = "outputs"  # kRegressOutputs


def debug_string(signature: SignatureSpec) -> str:
    """``SignatureDef::DebugString()`` of the signature, quoted in TF Serving's errors."""
    proto = protos.meta_graph_pb2.SignatureDef(method_name=signature.method_name)
    for target, specs in ((proto.inputs, signature.inputs), (proto.outputs, signature.outputs)):
        for key, spec in specs.items():
            info = target[key]
            info.name = spec.tensor_name
            entry = dtypes.BY_TF_NAME.get(spec.dtype)
            if entry is not None:
                info.dtype = entry.tf_enum  # type: ignore[assignment]
            if spec.shape is None:
                info.tensor_shape.unknown_rank = True
            else:
                for size in spec.shape:
                    info.tensor_shape.dim.add(size=size)
    return text_format.MessageToString(proto)


def _shape_text(array: np.ndarray) -> str:
    """``TensorShape::DebugString``: ``[2,1]``."""
    return "[" + ",".join(str(d) for d in array.shape) + "]"


def _tf_name(array: np.ndarray) -> str:
    entry = dtypes.BY_NUMPY.get(array.dtype)
    return entry.tf_name if entry is not None else str(array.dtype)


def _check_method(signature: SignatureSpec, method: str, kind: str, check: bool) -> None:
    if check and signature.method_name != method:
        raise invalid_argument(
            f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
        )


def classification_signature(signature: SignatureSpec, check_method: bool) -> tuple[str, list[str]]:
    """``PreProcessClassification``: the input key and the output keys to fetch."""
    _check_method(signature, CLASSIFY_METHOD, "classification", check_method)
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(
            f"Expected one or two output Tensors, found {len(signature.outputs)}"
        )
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid_argument(
            f"No classification inputs found in SignatureDef: {debug_string(signature)}"
        )
    outputs = [k for k in (CLASSIFY_CLASSES, CLASSIFY_SCORES) if k in signature.outputs]
    if not outputs:
        raise invalid_argument(
            "Expected classification signature outputs to contain at least one of "
            f'"{CLASSIFY_CLASSES}" or "{CLASSIFY_SCORES}". Signature was: '
            f"{debug_string(signature)}"
        )
    return CLASSIFY_INPUTS, outputs


def regression_signature(signature: SignatureSpec, check_method: bool) -> tuple[str, list[str]]:
    """``PreProcessRegression``: the input key and the one output key to fetch."""
    _check_method(signature, REGRESS_METHOD, "regression", check_method)
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if REGRESS_INPUTS not in signature.inputs:
        raise invalid_argument(
            f"No regression inputs found in SignatureDef: {debug_string(signature)}"
        )
    if REGRESS_OUTPUTS not in signature.outputs:
        raise invalid_argument(
            f"No regression outputs found in SignatureDef: {debug_string(signature)}"
        )
    return REGRESS_INPUTS, [REGRESS_OUTPUTS]


def _check_class_tensor(array: np.ndarray, name: str, dtype: str, num_examples: int) -> None:
    if array.ndim != 2:
        raise invalid_argument(
            f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(array)}"
        )
    if _tf_name(array) != dtype:
        raise invalid_argument(f"Expected {name} Tensor of {dtype}. Got: {_tf_name(array)}")
    if array.shape[0] != num_examples:
        raise invalid_argument(
            f"Expected {name} output batch size of {num_examples}. Got: {array.shape[0]}"
        )


def classification_results(
    num_examples: int, outputs: dict[str, np.ndarray]
) -> list[list[tuple[str, float]]]:
    """``PostProcessClassificationResult``: one (label, score) list per example; a missing
    ``classes`` leaves labels empty, a missing ``scores`` leaves scores 0."""
    classes = outputs.get(CLASSIFY_CLASSES)
    scores = outputs.get(CLASSIFY_SCORES)
    if classes is not None:
        _check_class_tensor(classes, "classes", "DT_STRING", num_examples)
    if scores is not None:
        _check_class_tensor(scores, "scores", "DT_FLOAT", num_examples)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    present = classes if classes is not None else scores
    width = present.shape[1] if present is not None else 0
    labels = (
        [[_label(c) for c in row] for row in classes]
        if classes is not None
        else [[""] * width for _ in range(num_examples)]
    )
    values = (
        scores.astype(float).tolist()
        if scores is not None
        else [[0.0] * width for _ in range(num_examples)]
    )
    return [list(zip(lab, val, strict=True)) for lab, val in zip(labels, values, strict=True)]


def regression_results(num_examples: int, outputs: dict[str, np.ndarray]) -> list[float]:
    """``PostProcessRegressionResult``: one float per example."""
    values = outputs.get(REGRESS_OUTPUTS)
    if values is None:
        raise ServingError(Code.FAILED_PRECONDITION, "No regression outputs found in SignatureDef")
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise invalid_argument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            + _shape_text(values)
        )
    if values.shape[0] != num_examples:
        raise invalid_argument(
            "Input batch size did not match output batch size: "
            f"{num_examples} vs. {values.shape[0]}"
        )
    if _tf_name(values) != "DT_FLOAT":
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {_tf_name(values)}")
    return [float(v) for v in values.reshape(-1)]


def _label(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
