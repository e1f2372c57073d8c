"""Quality metrics: hand-checked values, task inference, undefined metrics left out."""

from __future__ import annotations

import math

import pytest

from control_plane.quality.metrics import Pair, compute, expected_calibration_error, infer_task


def test_regression_by_hand() -> None:
    pairs = [Pair(2.0, 1.0), Pair(2.0, 3.0), Pair(5.0, 4.0), Pair(4.0, 4.0)]
    got = compute(pairs)
    assert got["mae"] == pytest.approx(0.75)
    assert got["rmse"] == pytest.approx(math.sqrt(3 / 4))
    assert got["mape"] == pytest.approx((1 + 1 / 3 + 1 / 4 + 0) / 4)
    mean = 3.0
    assert got["r2"] == pytest.approx(1 - 3 / sum((y - mean) ** 2 for y in (1, 3, 4, 4)))


def test_binary_by_hand() -> None:
    # scores vs truth: one false positive (0.6, 0), one false negative (0.4, 1).
    data = [(0.9, 1), (0.8, 1), (0.6, 0), (0.4, 1), (0.2, 0), (0.1, 0)]
    got = compute([Pair(s, t) for s, t in data])
    assert infer_task([Pair(s, t) for s, t in data]) == "binary"
    assert got["accuracy"] == pytest.approx(4 / 6)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)
    # AUC: of 9 (pos, neg) pairs, (0.4, 0.6) is the only one ranked wrong.
    assert got["auc_roc"] == pytest.approx(8 / 9)
    expected_loss = -sum(math.log(s if t else 1 - s) for s, t in data) / 6
    assert got["log_loss"] == pytest.approx(expected_loss)
    assert 0 < got["calibration_error"] < 1


def test_calibration_error_of_a_calibrated_and_a_biased_model() -> None:
    import numpy as np

    y = np.array([1] * 7 + [0] * 3)
    assert expected_calibration_error(y, np.full(10, 0.7)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(10, 0.2)) == pytest.approx(0.5)


def test_auc_is_left_out_when_one_class_is_present() -> None:
    got = compute([Pair(0.9, 1), Pair(0.7, 1)])
    assert "auc_roc" not in got and got["accuracy"] == 1.0


def test_multiclass_top_k_and_f1() -> None:
    scores = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]
    truths = [0, 1, 1, 2]
    got = compute([Pair(s, t) for s, t in zip(scores, truths, strict=True)])
    assert got["top1_accuracy"] == pytest.approx(2 / 4)
    assert got["top3_accuracy"] == 1.0
    assert got["micro_f1"] == pytest.approx(2 / 4)
    # per class F1: class0 p=1/2 r=1 -> 2/3; class1 0; class2 p=1/2 r=1 -> 2/3.
    assert got["macro_f1"] == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)


def test_multiclass_truth_as_label_text() -> None:
    pairs = [Pair([0.1, 0.9], "dog", ("cat", "dog")), Pair([0.8, 0.2], "dog", ("cat", "dog"))]
    assert compute(pairs, "multiclass")["top1_accuracy"] == 0.5


def test_multilabel() -> None:
    pairs = [Pair([0.9, 0.8, 0.1], [0, 1]), Pair([0.2, 0.1, 0.7], [0])]
    got = compute(pairs)
    assert infer_task(pairs) == "multilabel"
    assert got["top1_accuracy"] == 0.5
    assert got["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        compute([Pair(1.0, 1.0)], "ranking")
