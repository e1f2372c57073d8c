"""The parity rules on their own (no engine): generated inputs, the comparison, the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from control_plane.converter import parity
from control_plane.converter.parity import InputSpec
from tfsgate.runtime.tf_example import DenseFeature, DenseParser


def test_cases_cover_batch_sizes_and_kinds() -> None:
    inputs = {"x": InputSpec("float32", (-1, 3)), "ids": InputSpec("int64", (-1,))}
    cases = list(parity.cases(inputs, max_batch=128))
    assert len(cases) == 9
    assert sorted({c.feeds["x"].shape for c in cases}) == [(1, 3), (7, 3), (128, 3)]
    assert all(c.feeds["ids"].dtype == np.int64 for c in cases)
    zeros = [c for c in cases if c.label.startswith("zeros")]
    assert all(not c.feeds["x"].any() for c in zeros)
    extremes = next(c for c in cases if c.label == "extremes, batch 128")
    assert np.abs(extremes.feeds["x"]).max() == 1e4


def test_unbatched_signatures_keep_their_shape() -> None:
    cases = list(parity.cases({"v": InputSpec("float32", (3,)), "s": InputSpec("string", ())}, 128))
    assert [c.label for c in cases] == ["zeros", "extremes", "random"]
    assert all(c.feeds["v"].shape == (3,) and c.feeds["s"].shape == () for c in cases)


def test_example_cases_parse_back() -> None:
    features = [
        DenseFeature("x", "float32", (1,)),
        DenseFeature("w", "int64", (2,), [5, 6]),
        DenseFeature("s", "string", (), "d"),
    ]
    parser = DenseParser(features, "ParseExample")
    cases = list(parity.cases({}, 16, examples=("inputs", features)))
    assert len(cases) == 9
    for case in cases:
        parsed = parser.parse(case.feeds["inputs"])
        assert parsed["x"].shape[1:] == (1,) and parsed["w"].shape[1:] == (2,)
    random = next(c for c in cases if c.label == "random, batch 7")
    assert parser.parse(random.feeds["inputs"])["w"][1].tolist() == [5, 6]  # a defaulted row


@pytest.mark.parametrize(
    ("expected", "actual", "agree"),
    [
        (np.array([1.0, 2.0], np.float32), np.array([1.0, 2.0], np.float32), True),
        (np.array([[1e4, 11.3842]], np.float32), np.array([[1e4, 11.3856]], np.float32), True),
        (np.array([[1.0, 11.3842]], np.float32), np.array([[1.0, 11.3856]], np.float32), False),
        (np.array([np.nan], np.float32), np.array([np.nan], np.float32), True),
        (np.array([np.nan], np.float32), np.array([0.0], np.float32), False),
        (np.array([np.inf], np.float32), np.array([np.inf], np.float32), True),
        (np.array([np.inf], np.float32), np.array([-np.inf], np.float32), False),
        (np.array([1, 2]), np.array([1, 3]), False),
        (np.array([1.0], np.float32), np.array([1.0], np.float64), False),
        (np.array([1.0], np.float32), np.array([1.0, 1.0], np.float32), False),
        (np.array([b"2.0"], object), np.array(["2.0"], object), True),
        (np.array([b"2.0"], object), np.array([b"2"], object), False),
    ],
)
def test_compare(expected: np.ndarray, actual: np.ndarray, agree: bool) -> None:
    ok, _, detail = parity.compare(expected, actual, 1e-5, 1e-4)
    assert ok is agree, detail


def test_zero_tolerance_refuses_the_last_bit() -> None:
    expected = np.array([[-0.017651968]], np.float32)
    actual = np.nextafter(expected, np.float32(1))
    ok, error, detail = parity.compare(expected, actual, 0.0, 0.0)
    assert not ok and error is not None and error > 0
    assert "> atol 0 + rtol 0" in detail


def test_check_verdicts() -> None:
    inputs = {"x": InputSpec("float32", (-1, 1))}

    def tensorflow(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": feeds["x"] * 0.5 + 2}

    def exact(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": feeds["x"] * 0.5 + 2}

    def off(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": feeds["x"] * 0.5 + 2.001}

    def failing(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise RuntimeError("ONNX Runtime says no")

    passed = parity.check(tensorflow, exact, parity.cases(inputs, 16))
    assert passed.passed and passed.max_abs_error == 0.0 and passed.cases == 9
    wrong = parity.check(tensorflow, off, parity.cases(inputs, 16))
    assert not wrong.passed and wrong.reason.startswith("zeros, batch 1: output 'y' element 0")
    alone = parity.check(tensorflow, failing, parity.cases(inputs, 16))
    assert not alone.passed and "only ONNX Runtime failed: ONNX Runtime says no" in alone.reason
    both = parity.check(failing, failing, parity.cases(inputs, 16))
    assert not both.passed and both.reason == "every generated input failed in both engines"
