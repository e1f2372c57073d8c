"""The float-only predict fast path (simdjson) against the exact path (orjson + json_tensors).

The fast path may decline any body; when it answers, its tensors must equal the exact path's in
dtype, shape and every bit, and a body the exact path rejects must never be answered. Every test
runs twice: with bodies read whole, and with every body read in pieces of a few bytes
(``json_pieces``, the path of bodies above a megabyte), falling back to the whole read."""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

import numpy as np
import orjson
import pytest

from gateway.codecs import json_numeric, json_pieces
from gateway.codecs import json_requests as jr
from tests.support.signatures import spec
from tfsgate.core.signatures import SignatureSpec
from tfsgate.core.status import ServingError

PREDICT = "tensorflow/serving/predict"
PAD = " " * json_numeric.MIN_BYTES  # whitespace: long enough for the fast path, same JSON


def sig(**inputs: Any) -> SignatureSpec:
    return SignatureSpec("serving_default", PREDICT, inputs, {"y": spec("y")})


FLOAT = sig(x=spec("x", "DT_FLOAT", (-1, -1)))
DOUBLE = sig(x=spec("x", "DT_DOUBLE", (-1, -1)))
FLOAT_VECTOR = sig(x=spec("x", "DT_FLOAT", (-1,)))
INT = sig(x=spec("x", "DT_INT64", (-1, -1)))
TWO = sig(a=spec("a", "DT_FLOAT", (-1, 2)), b=spec("b", "DT_DOUBLE", (-1,)))


@pytest.fixture(autouse=True, params=["whole", "pieces"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pieces":
        monkeypatch.setattr(json_numeric, "REUSED_UP_TO", json_numeric.MIN_BYTES)
        monkeypatch.setattr(json_pieces, "PIECE", 8)  # a cut every few numbers
    return str(request.param)


def _exact(body: bytes, signature: SignatureSpec) -> dict[str, np.ndarray] | ServingError:
    try:
        return jr.decode_predict_request(body, signature).tensors
    except ServingError as err:
        return err


def _fast(body: bytes, signature: SignatureSpec) -> dict[str, np.ndarray] | None:
    numeric = json_numeric.parse_predict(body)
    return None if numeric is None else numeric.tensors(signature)


def _same(fast: dict[str, np.ndarray], exact: dict[str, np.ndarray]) -> bool:
    return set(fast) == set(exact) and all(
        fast[k].dtype == exact[k].dtype
        and fast[k].shape == exact[k].shape
        and fast[k].tobytes() == exact[k].tobytes()
        for k in exact
    )


def check(body: bytes, signature: SignatureSpec) -> bool:
    """Whether the fast path answered; fails if it answered differently from the exact path."""
    exact = _exact(body, signature)
    fast = _fast(body, signature)
    if fast is None:
        return False
    assert not isinstance(exact, ServingError), f"fast path accepted {body[:80]!r}: {exact}"
    assert _same(fast, exact), body[:80]
    # And through PredictBody, as the REST door reads it.
    assert _same(jr.PredictBody(body).tensors(signature), exact)
    return True


def body(document: str) -> bytes:
    return (document + PAD).encode()


@pytest.mark.parametrize(
    ("document", "signature"),
    [
        ('{"instances": [[0.1, -2.5, 3e-7, 1E5, 7, -0, -0.0, 16777215]]}', FLOAT),
        ('{"instances": [[0.1, 0.2], [0.3, 0.4], [1, 2]]}', DOUBLE),
        ('{"instances": [1.5, 2.5, 3.5]}', FLOAT_VECTOR),
        ('{"inputs": [[1.5, 2.5], [3.5, 4.5]]}', FLOAT),
        ('{"signature_name": "serving_default", "inputs": [[9007199254740991]]}', DOUBLE),
        ('{"inputs": {"a": [' + "[1, 2], " * 20 + '[3, 4]], "b": [0.5, 0.25]}}', TWO),
        ('{"instances": [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]]}', FLOAT),
    ],
)
def test_numeric_bodies_take_the_fast_path_with_the_exact_values(
    document: str, signature: SignatureSpec
) -> None:
    assert check(body(document), signature)


@pytest.mark.parametrize(
    ("document", "signature"),
    [
        ('{"instances": [[1, 2], [3], [4, 5, 6]]}', FLOAT),  # ragged, same count as 3 x 2
        ('{"instances": [[1.5, [2.5]]]}', FLOAT),  # a leaf nested one level too deep
        ('{"instances": [[1.5], 2.5]}', FLOAT),
        ('{"instances": [[], []]}', FLOAT),
        ('{"instances": []}', FLOAT),
        ('{"instances": [[true, 1.0]]}', FLOAT),
        ('{"instances": [["1.5"]]}', FLOAT),
        ('{"instances": [[null]]}', FLOAT),
        ('{"instances": [[NaN, 1.0]]}', FLOAT),
        ('{"instances": [[Infinity]]}', FLOAT),
        ('{"instances": [[1e400]]}', FLOAT),
        ('{"instances": [[16777217]]}', FLOAT),  # an int a float cannot hold exactly
        ('{"instances": [[3.5e38]]}', FLOAT),  # beyond float32
        ('{"instances": [[1, 2]]}', INT),
        ('{"instances": [{"x": [1.0]}]}', FLOAT),
        ('{"instances": [[1.0]], "inputs": [[1.0]]}', FLOAT),
        ('{"instances": [[1.0]], "instances": [[2.0]]}', FLOAT),
        ('{"instances": [[1.0]], "other": 1}', FLOAT),
        ('{"signature_name": 7, "instances": [[1.0]]}', FLOAT),
        ('{"inputs": 1.5}', FLOAT),
        ('{"inputs": {"a": [[1, 2]]}}', TWO),  # a missing input
        ('{"inputs": {"a": [[1, 2]], "b": [1], "c": [1]}}', TWO),
        ('{"inputs": {"a": [[1, 2]], "a": [[1, 2]], "b": [1]}}', TWO),
        ('{"instances": [[1.0, 2.0]]}', TWO),  # one unnamed tensor, two inputs
        ("[[1.0, 2.0]]", FLOAT),
        ('{"instances": [[1.0, 2.0]]', FLOAT),  # truncated
    ],
)
def test_other_bodies_are_left_to_the_exact_path(document: str, signature: SignatureSpec) -> None:
    assert not check(body(document), signature)


def test_small_bodies_are_left_to_orjson() -> None:
    assert json_numeric.parse_predict(b'{"instances": [[1.0]]}') is None


def _random_tensor(rng: random.Random, shape: list[int]) -> Any:
    if not shape:
        kind = rng.random()
        if kind < 0.6:
            return rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-12, 2)
        if kind < 0.9:
            return rng.randint(-(2**25), 2**25)
        return rng.choice([True, None, "s", float("nan"), 2**60, [1.0], []])
    return [_random_tensor(rng, shape[1:]) for _ in range(shape[0])]


def _mutate(rng: random.Random, value: Any) -> Any:
    """Drop or add an element, or nest a leaf, somewhere in the tree."""
    if not isinstance(value, list) or not value:
        return [value] if rng.random() < 0.5 else value
    index = rng.randrange(len(value))
    choice = rng.random()
    if choice < 0.3:
        return value[:index] + value[index + 1 :]
    if choice < 0.5:
        return value + [value[index]]
    return value[:index] + [_mutate(rng, value[index])] + value[index + 1 :]


def _random_tree(rng: random.Random, widest: int, deepest: int) -> Any:
    """A tensor of random shape as nested lists, 40 % of the time made ragged or too deep."""
    shape = [rng.randint(1, widest) for _ in range(rng.randint(1, deepest))]
    tensor = _random_tensor(rng, shape)
    return _mutate(rng, tensor) if rng.random() < 0.4 else tensor


def test_random_bodies_agree_with_the_exact_path() -> None:
    rng = random.Random(11)
    answered = 0
    for _ in range(600):
        tensor = _random_tree(rng, 4, 3)
        key = rng.choice(["instances", "inputs"])
        document = orjson.dumps({key: tensor}, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        document = document.replace("null", rng.choice(["null", "NaN"]))
        for signature in (FLOAT, DOUBLE):
            answered += check(body(document), signature)
    assert answered > 200  # the comparison above was made, not skipped


def _pieces(body: bytes, signature: SignatureSpec) -> dict[str, np.ndarray] | None:
    """The tensors ``json_pieces`` alone reads from ``body``, or None where it declines."""
    read = json_pieces.read(body, json_numeric._parser)
    if read is None:
        return None
    name, row_format, doubles = read
    return json_numeric.NumericBody(name, row_format, {"": doubles}).tensors(signature)


@pytest.mark.parametrize(
    ("document", "signature"),
    [
        ('{"instances": [[0.1, -2.5, 3e-7, 1E5, 7, -0, -0.0, 16777215]]}', FLOAT),
        ('{"instances": [[0.1, 0.2], [0.3, 0.4], [1, 2]]}', DOUBLE),
        ('{"instances": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5]}', FLOAT_VECTOR),
        ('{"inputs": [[1.5, 2.5], [3.5, 4.5]]}', FLOAT),
        ('{"signature_name": "serving_default", "inputs": [[9007199254740991]]}', DOUBLE),
        ('{"instances": [[1.5, 2.5]], "signature_name": "serving_default"}', FLOAT),
        ('{"instances": [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]]}', FLOAT),
        ('\n{ "instances" :\t[ [ 1.0 , 2.0 ] ,\r\n[ 3.0 ,4.0 ] ] }', FLOAT),
        ('{"instances": [[1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0]]}', FLOAT),
    ],
)
def test_one_array_is_read_in_pieces_with_the_exact_values(
    document: str, signature: SignatureSpec
) -> None:
    read = _pieces(body(document), signature)
    exact = _exact(body(document), signature)
    assert read is not None and not isinstance(exact, ServingError)
    assert _same(read, exact)


@pytest.mark.parametrize(
    "document",
    [
        '{"instances": [[1, 2], [3], [4, 5, 6]]}',  # ragged, same count as 3 x 2
        '{"instances": [[1, 2, 3], [4, 5], [6]]}',
        '{"instances": [[1.5, [2.5]]]}',
        '{"instances": [[1.5], 2.5]}',
        '{"instances": [[], []]}',
        '{"instances": [[1.0, , 2.0]]}',
        '{"instances": [[1.0 2.0]]}',
        '{"instances": [[01.5, 2.0]]}',
        '{"instances": [[+1.5, 2.0]]}',
        '{"instances": [[.5, 2.0]]}',
        '{"instances": [[1.0, true]]}',
        '{"instances": [[1.0, NaN]]}',
        '{"instances": [[1.0, 1e400]]}',
        '{"instances": [[1.0]], "instances": [[2.0]]}',
        '{"signature_name": "a", "instances": [[1.0]], "signature_name": "b"}',
        '{"instances": [[1.0]], "other": 1}',
        '{"signature_name": "a\\\\u005d", "instances": [[1.0]]}',  # an escape in the name
        '{"inputs": {"x": [[1.0, 2.0]]}}',  # named inputs: read whole
        '{"instances": [[1.0, 2.0]]} x',
        '{"instances": [[1.0, 2.0]]',
    ],
)
def test_anything_else_is_declined_by_the_pieces(document: str) -> None:
    assert _pieces(body(document), FLOAT) is None


def test_a_name_that_is_not_utf8_is_declined_by_the_pieces() -> None:
    document = b'{"signature_name": "\xff", "instances": [[1.0, 2.0]]}' + PAD.encode()
    assert _pieces(document, FLOAT) is None
    assert isinstance(_exact(document, FLOAT), ServingError)


def test_random_bodies_read_in_pieces_agree_with_the_exact_path() -> None:
    rng = random.Random(12)
    answered = 0
    for _ in range(400):
        document = body(orjson.dumps({"instances": _random_tree(rng, 5, 4)}).decode())
        read = _pieces(document, DOUBLE)
        if read is not None:
            exact = _exact(document, DOUBLE)
            assert not isinstance(exact, ServingError), document[:80]
            assert _same(read, exact), document[:80]
            answered += 1
    assert answered > 80  # the comparison above was made, not skipped


def test_a_large_body_in_one_array_leaves_the_parser_small(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above REUSED_UP_TO a body in one array is read in pieces: the parser is not grown (so
    it is not replaced at the next trim), and the tensor is the exact path's."""
    monkeypatch.setattr(json_numeric, "_grown", False)
    row = ", ".join(f"{i / 7:.6f}" for i in range(1000))
    large = ('{"instances": [' + ", ".join([f"[{row}]"] * 200) + "]}").encode()
    assert len(large) > json_numeric.REUSED_UP_TO
    numeric = json_numeric.parse_predict(large)
    exact = _exact(large, FLOAT)
    assert numeric is not None and not isinstance(exact, ServingError)
    tensors = numeric.tensors(FLOAT)
    assert tensors is not None and _same(tensors, exact)
    assert tensors["x"].shape == (200, 1000)
    assert json_numeric._grown is False


def test_a_large_body_is_read_without_a_buffer_for_its_most_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The doubles of a body read in pieces take what its numbers need: a buffer for the most
    numbers its text could hold (21 MB for the 5.3 MB body of 262144 floats) raised glibc's mmap
    threshold to its size and grew the heap under the payload's peak RSS."""
    monkeypatch.setattr(json_pieces, "PIECE", 1 << 18)  # the fixture's tiny pieces cost more
    rows = np.random.default_rng(0).random((1, 1 << 16), np.float32)
    large = orjson.dumps({"instances": rows.tolist()})
    tracemalloc.start()
    try:
        read = json_pieces.read(large, json_numeric._parser)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read is not None
    np.testing.assert_array_equal(read[2].astype(np.float32), rows)
    assert peak < 2 * len(large)  # that buffer alone was 4 times the text
