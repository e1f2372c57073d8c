"""Quality metrics of one version over (prediction, ground truth) pairs, with scikit-learn.

The task decides the metrics (keyed in ``compute``'s answer as below, e.g. ``auc_roc``):

- regression: MAE, RMSE, MAPE, R2;
- binary classification (a score in [0, 1] per row, truth 0/1): accuracy, precision, recall and
  F1 at threshold 0.5, AUC-ROC, AUC-PR (average precision), log loss, and the expected
  calibration error over 10 equal-width bins (sklearn's ``calibration_curve`` binning; sklearn
  has no ECE function of its own);
- multiclass (a score vector per row, truth a class index or label): top-1..top-k accuracy,
  macro and micro F1 of the arg-max class;
- multilabel (a score per label, truth a list of labels): macro and micro F1 at 0.5, and top-k
  accuracy as the share of rows whose k best-scored labels include a true one.

A metric that is undefined on the data (AUC with one class present, R2 of one row) is left out
rather than reported as a made-up number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TASKS = ("regression", "binary", "multiclass", "multilabel")
# Metrics where lower is better (the rollout guard compares in the right direction).
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "log_loss", "calibration_error"})
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Pair:
    """One row: the model's output and the ground truth sent as feedback."""

    prediction: float | list[float]
    truth: Any
    classes: tuple[str, ...] = ()  # class labels of the prediction's scores, when known


def infer_task(pairs: Sequence[Pair]) -> str:
    """Regression, binary, multiclass or multilabel, from the shapes of the data."""
    first = pairs[0]
    if isinstance(first.truth, list):
        return "multilabel"
    width = len(first.prediction) if isinstance(first.prediction, list) else 1
    if width >= 2:
        return "multiclass"
    truths = {p.truth for p in pairs}
    scores = [_scalar(p.prediction) for p in pairs]
    if truths <= {0, 1} and all(0.0 <= s <= 1.0 for s in scores):
        return "binary"
    return "regression"


def compute(pairs: Sequence[Pair], task: str | None = None) -> dict[str, float]:
    """Every metric of ``task`` (inferred when None) that is defined on ``pairs``."""
    if not pairs:
        return {}
    task = task or infer_task(pairs)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined metrics are dropped below, not warned about
        computed = _COMPUTE[task](pairs)
    return {k: float(v) for k, v in computed.items() if v is not None and math.isfinite(v)}


def _scalar(value: float | list[float]) -> float:
    return float(value[0] if isinstance(value, list) else value)


def _regression(pairs: Sequence[Pair]) -> dict[str, float | None]:
    from sklearn import metrics as skm  # 1 s to import: only when feedback is scored

    y = np.array([float(p.truth) for p in pairs])
    pred = np.array([_scalar(p.prediction) for p in pairs])
    return {
        "mae": skm.mean_absolute_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
        "r2": skm.r2_score(y, pred) if len(y) >= 2 else None,
    }


def expected_calibration_error(
    y: np.ndarray, prob: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Weighted mean |observed rate - mean score| over equal-width score bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], prob, side="right")  # as sklearn.calibration_curve
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - prob[mask].mean())
    return total / len(y)


def _binary(pairs: Sequence[Pair]) -> dict[str, float | None]:
    from sklearn import metrics as skm  # 1 s to import: only when feedback is scored

    y = np.array([int(p.truth) for p in pairs])
    prob = np.clip(np.array([_scalar(p.prediction) for p in pairs]), 0.0, 1.0)
    label = (prob >= 0.5).astype(int)
    both = len(set(y.tolist())) == 2
    return {
        "accuracy": skm.accuracy_score(y, label),
        "precision": skm.precision_score(y, label, zero_division=0),
        "recall": skm.recall_score(y, label, zero_division=0),
        "f1": skm.f1_score(y, label, zero_division=0),
        "auc_roc": skm.roc_auc_score(y, prob) if both else None,
        "auc_pr": skm.average_precision_score(y, prob) if both else None,
        "log_loss": skm.log_loss(y, prob, labels=[0, 1]),
        "calibration_error": expected_calibration_error(y, prob),
    }


def _class_index(pair: Pair, truth: Any) -> int:
    if isinstance(truth, str) and pair.classes:
        return pair.classes.index(truth)
    return int(truth)


def _multiclass(pairs: Sequence[Pair]) -> dict[str, float | None]:
    from sklearn import metrics as skm  # 1 s to import: only when feedback is scored

    scores = np.array([p.prediction for p in pairs], dtype=np.float64)
    y = np.array([_class_index(p, p.truth) for p in pairs])
    classes = np.arange(scores.shape[1])
    predicted = scores.argmax(axis=1)
    out: dict[str, float | None] = {}
    out["top1_accuracy"] = skm.accuracy_score(y, predicted)
    for k in (3, 5):  # sklearn reads a two-column score matrix as binary: only top-1 there
        if scores.shape[1] > 2 and k <= scores.shape[1]:
            out[f"top{k}_accuracy"] = skm.top_k_accuracy_score(y, scores, k=k, labels=classes)
    out["macro_f1"] = skm.f1_score(y, predicted, average="macro", labels=classes, zero_division=0)
    out["micro_f1"] = skm.f1_score(y, predicted, average="micro", labels=classes, zero_division=0)
    return out


def _multilabel(pairs: Sequence[Pair]) -> dict[str, float | None]:
    from sklearn import metrics as skm  # 1 s to import: only when feedback is scored

    scores = np.array([p.prediction for p in pairs], dtype=np.float64)
    truth = np.zeros_like(scores, dtype=int)
    for row, pair in enumerate(pairs):
        for value in pair.truth:
            truth[row, _class_index(pair, value)] = 1
    predicted = (scores >= 0.5).astype(int)
    ranked = np.argsort(-scores, axis=1)
    out: dict[str, float | None] = {
        "macro_f1": skm.f1_score(truth, predicted, average="macro", zero_division=0),
        "micro_f1": skm.f1_score(truth, predicted, average="micro", zero_division=0),
    }
    for k in (1, 3):
        if k <= scores.shape[1]:
            hits = np.take_along_axis(truth, ranked[:, :k], axis=1).any(axis=1)
            out[f"top{k}_accuracy"] = float(hits.mean())
    return out


_COMPUTE = {
    "regression": _regression,
    "binary": _binary,
    "multiclass": _multiclass,
    "multilabel": _multilabel,
}
