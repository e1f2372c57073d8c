"""Parity between a TensorFlow signature and its ONNX conversion: generated inputs, one verdict.

Pure numpy (the TensorFlow and ONNX sides are callables given by the export child), so the rules
are unit-tested without either engine.

Inputs respect the signature: its dtypes; its shapes with the batch dimension at 1, 7 and the
model's max batch size (unbatched signatures: their fixed shape; other unknown dimensions 3); three
kinds of values: zeros, extremes, random. Signatures that start with ParseExample get serialized
``tf.Example`` protos built from the parsed features (defaulted features left out in half the rows).

Agreement: both sides fail = agree (an input the graph itself refuses); one side fails = mismatch;
shapes and dtypes equal; strings, integers and booleans exact; floats with NaN and inf where
TensorFlow has them and ``|onnx - tf| <= atol + rtol * scale``, where scale is the largest finite
|TF value| of the same example row. Per-row scale, not per element: float summation order differs
between the engines, and the difference grows with the magnitudes a row went through, which an
output near 0 obtained by cancellation does not show (measured on a 3x1024 MLP with inputs of 1e4:
element 11.3856 vs 11.3842 in a row whose largest value is 1e4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tfsgate.runtime.tf_example import DenseFeature, Example

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4
BATCH_SIZES = (1, 7)
KINDS = ("zeros", "extremes", "random")
_WORDS = [b"", b"a", b"hello", "\u00e9t\u00e9".encode(), b"x" * 40]
_FLOAT_EXTREMES = [-1e4, -1.0, -1e-30, 0.0, 1e-30, 1.0, 1e4]


@dataclass(frozen=True)
class InputSpec:
    dtype: str  # numpy dtype name, or "string"
    shape: tuple[int, ...] | None  # -1 = unknown; None = unknown rank


@dataclass(frozen=True)
class Case:
    label: str
    feeds: dict[str, np.ndarray]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    max_abs_error: float | None  # worst float difference seen; None when nothing compared
    cases: int
    reason: str  # why it failed, with the figures; "" when passed


def _values(dtype: str, shape: tuple[int, ...], kind: str, rng: np.random.Generator) -> np.ndarray:
    size = int(np.prod(shape, dtype=np.int64))
    if dtype == "string":
        out = np.empty(size, dtype=object)
        if kind == "random":
            out[:] = [
                bytes(rng.integers(97, 123, rng.integers(0, 12)).astype(np.uint8))
                for _ in range(size)
            ]
        elif kind == "zeros":
            out[:] = [b""] * size
        else:
            out[:] = [_WORDS[i % len(_WORDS)] for i in range(size)]
        return out.reshape(shape)
    numpy_type = np.dtype(dtype)
    if kind == "zeros":
        return np.zeros(shape, numpy_type)
    if numpy_type.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if numpy_type.kind in "iu":
        if kind == "extremes":
            info = np.iinfo(numpy_type)
            picks = [info.min, 0, 1, info.max] + ([-1] if numpy_type.kind == "i" else [])
            return rng.choice(np.array(picks, dtype=numpy_type), shape)
        return rng.integers(0, 10, shape).astype(numpy_type)
    if kind == "extremes":
        return rng.choice(np.array(_FLOAT_EXTREMES, dtype=numpy_type), shape)
    return rng.standard_normal(shape).astype(numpy_type)


def _shape(shape: tuple[int, ...] | None, batch: int | None) -> tuple[int, ...]:
    if shape is None:
        return (batch or 1,)
    return tuple(
        (batch if batch is not None else 1) if i == 0 and d < 0 else (3 if d < 0 else d)
        for i, d in enumerate(shape)
    )


def batched(inputs: Mapping[str, InputSpec]) -> bool:
    return bool(inputs) and all(s.shape and s.shape[0] < 0 for s in inputs.values())


def cases(
    inputs: Mapping[str, InputSpec],
    max_batch: int,
    examples: tuple[str, Sequence[DenseFeature]] | None = None,
    seed: int = 0,
) -> Iterator[Case]:
    """The generated inputs, keyed like the signature. ``examples``: (the serialized-examples
    input key, the features ParseExample reads) for signatures that start with it."""
    rng = np.random.default_rng(seed)
    sizes: Sequence[int | None] = (
        sorted({*BATCH_SIZES, max_batch}) if examples or batched(inputs) else (None,)
    )
    for batch in sizes:
        for kind in KINDS:
            label = f"{kind}, batch {batch}" if batch is not None else kind
            if examples is not None:
                key, features = examples
                yield Case(label, {key: _serialized(features, batch or 1, kind, rng)})
            else:
                feeds = {
                    k: _values(s.dtype, _shape(s.shape, batch), kind, rng)
                    for k, s in inputs.items()
                }
                yield Case(label, feeds)


def _serialized(
    features: Sequence[DenseFeature], batch: int, kind: str, rng: np.random.Generator
) -> np.ndarray:
    columns = {f.key: _values(f.dtype, (batch, *f.shape), kind, rng) for f in features}
    out = np.empty(batch, dtype=object)
    for row in range(batch):
        message = Example()
        for feature in features:
            if feature.default is not None and kind == "random" and row % 2:
                continue  # the default fills it in on both sides
            values = np.asarray(columns[feature.key][row], dtype=object).reshape(-1).tolist()
            target = message.features.feature[feature.key]
            {"float32": target.float_list, "int64": target.int64_list, "string": target.bytes_list}[
                feature.dtype
            ].value.extend(values)
        out[row] = message.SerializeToString()
    return out


def _as_bytes(array: np.ndarray) -> np.ndarray:
    flat = [v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1).tolist()]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out


def compare(
    expected: np.ndarray, actual: np.ndarray, atol: float, rtol: float
) -> tuple[bool, float | None, str]:
    """(agree, max |difference| for floats, what differs)."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        return (
            False,
            None,
            f"shape {list(actual.shape)} where TensorFlow's is {list(expected.shape)}",
        )
    if expected.dtype.kind in "OSU" or actual.dtype.kind in "OSU":
        want, got = _as_bytes(expected), _as_bytes(actual)
        differ = np.flatnonzero(want != got)
        if differ.size:
            i = int(differ[0])
            return False, None, f"element {i} is {got[i]!r} where TensorFlow's is {want[i]!r}"
        return True, None, ""
    if expected.dtype != actual.dtype:
        return False, None, f"dtype {actual.dtype} where TensorFlow's is {expected.dtype}"
    if expected.dtype.kind not in "fc":
        differ = np.flatnonzero((expected != actual).reshape(-1))
        if differ.size:
            i = int(differ[0])
            return (
                False,
                None,
                f"element {i} is {actual.reshape(-1)[i]!r} where TensorFlow's is {expected.reshape(-1)[i]!r}",
            )
        return True, None, ""
    want, got = expected.astype(np.float64), actual.astype(np.float64)
    if (np.isnan(want) != np.isnan(got)).any():
        return False, None, "NaN where TensorFlow has none, or the reverse"
    finite = np.isfinite(want)
    if ((~finite & ~np.isnan(want)) & (want != got)).any():
        return False, None, "infinity where TensorFlow has a different value"
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.where(finite, np.abs(want - got), 0.0)
    error = np.where(np.isnan(error), np.inf, error)
    worst = float(error.max()) if error.size else 0.0
    magnitude = np.where(finite, np.abs(want), 0.0)
    if magnitude.ndim and magnitude.size:
        scale = magnitude.reshape(magnitude.shape[0], -1).max(axis=1)
        scale = scale.reshape((-1,) + (1,) * (magnitude.ndim - 1))
    else:
        scale = magnitude
    bad = error > atol + rtol * scale
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        return (
            False,
            worst,
            f"element {i} is {got.reshape(-1)[i]!r} where TensorFlow's is {want.reshape(-1)[i]!r}: "
            f"|difference| {error.reshape(-1)[i]:.3g} > atol {atol:g} + rtol {rtol:g} x "
            f"{np.broadcast_to(scale, error.shape).reshape(-1)[i]:.3g} (the row's largest |value|)",
        )
    return True, worst, ""


Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def check(
    tensorflow: Runner,
    onnx: Runner,
    generated: Iterator[Case],
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> Verdict:
    """Run both sides on every case; the first disagreement decides."""
    worst: float | None = None
    count = compared = 0
    for case in generated:
        count += 1
        expected = error_tf = actual = error_onnx = None
        try:
            expected = tensorflow(case.feeds)
        except Exception as exc:  # noqa: BLE001 - a refused input is a result too
            error_tf = str(exc)
        try:
            actual = onnx(case.feeds)
        except Exception as exc:  # noqa: BLE001
            error_onnx = str(exc)
        if error_tf is not None or error_onnx is not None:
            if error_tf is None or error_onnx is None:
                side, text = ("TensorFlow", error_tf) if error_tf else ("ONNX Runtime", error_onnx)
                reason = f"{case.label}: only {side} failed: {(text or '').splitlines()[0][:300]}"
                return Verdict(False, worst, count, reason)
            continue
        assert expected is not None and actual is not None
        compared += 1
        for key in sorted(expected):
            if key not in actual:
                return Verdict(False, worst, count, f"{case.label}: ONNX output {key!r} missing")
            ok, error, detail = compare(expected[key], actual[key], atol, rtol)
            if error is not None:
                worst = error if worst is None else max(worst, error)
            if not ok:
                return Verdict(
                    False,
                    worst,
                    count,
                    f"{case.label}: output {key!r} {detail} (atol {atol:g}, rtol {rtol:g})",
                )
    if not compared:
        return Verdict(False, worst, count, "every generated input failed in both engines")
    return Verdict(True, worst if worst is not None else 0.0, count, "")
