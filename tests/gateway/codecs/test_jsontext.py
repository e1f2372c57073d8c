"""JSON text helpers: parsing with NaN/Infinity and rapidjson's error words, TF's number format."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway.codecs import jsontext
from gateway.codecs.jsontext import (
    _FEW_OTHERS,
    SMALL,
    _float32_json_fixed,
    float_json,
    float_tokens,
    format_float32,
    format_float64,
    nest_tokens,
    parse_json,
    rapidjson_double,
    value_to_string,
)
from tfsgate.core.status import Code, ServingError


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": [1, 2.5]}', {"a": [1, 2.5]}),
        ('{"a": "caf\u00e9"}', {"a": "caf\u00e9"}),
        (b"[1e400]", [math.inf]),  # out of double range: infinity, like rapidjson
    ],
)
def test_parse_plain_json(body: bytes | str, expected: object) -> None:
    assert parse_json(body) == expected


def test_parse_accepts_nan_and_infinity_like_tf() -> None:
    parsed = parse_json(b'{"x": [NaN, Infinity, -Infinity, 1]}')
    values = parsed["x"]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1]


def test_parse_turns_huge_integers_into_doubles_either_way() -> None:
    assert parse_json(b"[123456789012345678901234567890]") == [1.2345678901234568e29]
    assert parse_json(b"[NaN, 123456789012345678901234567890]")[1] == 1.2345678901234568e29
    assert parse_json(b"[NaN, 18446744073709551615]")[1] == 2**64 - 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"   ", "JSON Parse error: The document is empty. at offset: 3"),
        (b'{"a": }', "JSON Parse error: Invalid value. at offset: 6"),
        (
            b'{"a": 1} x',
            "JSON Parse error: The document root must not be followed by other values."
            " at offset: 9",
        ),
        (b"{a: 1}", "JSON Parse error: Missing a name for object member. at offset: 1"),
        (
            b'{"a" 1}',
            "JSON Parse error: Missing a colon after a name of object member. at offset: 5",
        ),
        (
            b'{"a": 1 "b": 2}',
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 8",
        ),
        (
            b'{"a": [1 2]}',
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 9",
        ),
        (b'{"a": "x', "JSON Parse error: Missing a closing quotation mark in string. at offset: 6"),
        (b'{"a": "\\q"}', "JSON Parse error: Invalid escape character in string. at offset: 7"),
        (b'{"a": "\xff"}', "JSON Parse error: Invalid encoding in string. at offset: 7"),
    ],
)
def test_parse_errors_use_rapidjson_words(body: bytes, message: str) -> None:
    with pytest.raises(ServingError) as caught:
        parse_json(body)
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)


# TF Serving's WriteDecimal: %g (6 digits) when it reads back, else 9 (float) / 17 (double).
FLOAT32_TEXT = [
    (0.1, "0.1"),
    (1 / 3, "0.333333343"),
    (2.0, "2.0"),
    (2.5, "2.5"),
    (-0.0, "-0.0"),
    (0.0, "0.0"),
    (9e6, "9e+06"),
    (1e-5, "1e-05"),
    (123456.0, "123456.0"),
    (1234567.0, "1234567.0"),
    (16777216.0, "16777216.0"),
    (0.2, "0.2"),
    (3.4028234663852886e38, "3.40282347e+38"),
    (1e-45, "1.4013e-45"),  # the smallest denormal, 1.40129846e-45
    (math.nan, "NaN"),
    (math.inf, "Infinity"),
    (-math.inf, "-Infinity"),
]


@pytest.mark.parametrize(("value", "text"), FLOAT32_TEXT)
def test_float32_text(value: float, text: str) -> None:
    assert format_float32(value) == text
    assert float_tokens(np.array([value], dtype=np.float32)) == [text]


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1, "0.1"), (1 / 3, "0.33333333333333331"), (1e300, "1e+300"), (5.0, "5.0")],
)
def test_float64_text(value: float, text: str) -> None:
    assert format_float64(value) == text
    assert float_tokens(np.array([value])) == [text]


def test_vectorised_tokens_equal_the_scalar_formatter() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            (rng.standard_normal(3000) * 10.0 ** rng.integers(-40, 39, 3000)).astype(np.float32),
            np.round(rng.standard_normal(500), 3).astype(np.float32),
            rng.integers(-(10**7), 10**7, 500).astype(np.float32),
        ]
    )
    assert float_tokens(values) == [format_float32(v) for v in values.tolist()]
    doubles = values.astype(np.float64) / 7.0
    assert float_tokens(doubles) == [format_float64(v) for v in doubles.tolist()]


def test_small_tensors_format_like_large_ones() -> None:
    """Up to SMALL elements the tokens are made one by one in Python: the same texts."""
    rng = np.random.default_rng(11)
    edges = [
        0.0,
        -0.0,
        1.0,
        0.1,
        1 / 3,
        16777216.0,
        3.4028235e38,
        -3.4028235e38,
        3.40282e38,
        1.17549435e-38,
        1.4e-45,
        123456.7,
        1e-7,
        float("nan"),
        float("inf"),
        float("-inf"),
    ]
    values = np.concatenate(
        [
            np.array(edges, dtype=np.float32),
            (rng.standard_normal(2000) * 10.0 ** rng.integers(-40, 39, 2000)).astype(np.float32),
            np.round(rng.standard_normal(300), 3).astype(np.float32),
        ]
    )
    doubles = np.concatenate([values.astype(np.float64) / 7.0, [1e308, 5e-324, 0.1]])
    for array in (values, doubles):
        large = float_tokens(array)
        small = []
        for start in range(0, len(array), SMALL):
            small += float_tokens(array[start : start + SMALL])
        assert small == large


def _fixed_range_sweep(step: int, offset: int) -> np.ndarray:
    """Every ``step``-th float32 between 1e-4 and 1e6 (bit patterns in order), half negated."""
    low = int(np.array([1e-4], dtype=np.float32).view(np.uint32)[0]) + 1
    high = int(np.array([1e6], dtype=np.float32).view(np.uint32)[0])
    values = np.arange(low + offset, high, step, dtype=np.uint32).view(np.float32).copy()
    values[1::2] *= -1
    return values


def test_fixed_notation_path_writes_the_token_path_texts() -> None:
    """The numpy+orjson path for float32 in fixed notation writes exactly TF's texts: a sweep
    over the whole range (every 1009th float32, ~180k numbers), the powers of ten and their
    neighbours (where a decade found by log10 would be one off), zeros and shapes."""
    edges = np.array(
        [10.0**k for k in range(-3, 6)] + [0.5, 0.25, 123456.5, 99999.95, 9.9999995, 0.99999994],
        dtype=np.float32,
    )
    edges = np.concatenate(
        [edges, np.nextafter(edges, np.float32(2e6)), np.nextafter(edges, np.float32(0))]
        + [np.array([0.0, -0.0], dtype=np.float32)]
    )
    edges = np.concatenate([edges, -edges])
    for values in (_fixed_range_sweep(1009, 0), _fixed_range_sweep(4093, 17), edges):
        text = _float32_json_fixed(values)
        assert text is not None
        assert text.decode() == nest_tokens(float_tokens(values), values.shape)
    grid = _fixed_range_sweep(1_000_003, 3)[:60].reshape(3, 4, 5)
    assert float_json(grid) == nest_tokens(float_tokens(grid), grid.shape).encode()


def test_no_six_digit_decimal_in_fixed_notation_is_a_float32_tie() -> None:
    """Every float32 in fixed notation (1e-4 <= x < 1e6, ~285M numbers; a few seconds): the
    double of its 6-digit decimal is never halfway between two float32s, so deciding whether
    that decimal reads back through its double (as _fixed_decimals does) is exact."""
    low = int(np.array([1e-4], dtype=np.float32).view(np.uint32)[0]) + 1
    high = int(np.array([1e6], dtype=np.float32).view(np.uint32)[0])
    edges = jsontext._DECADE_EDGES
    scales = jsontext._DECADE_SCALE6
    checked = 0
    for start in range(low, high, 1 << 23):
        bits = np.arange(start, min(start + (1 << 23), high), dtype=np.uint32)
        mag = bits.view(np.float32).astype(np.float64)
        scale6 = scales[np.searchsorted(edges, mag, side="right")]
        y6 = np.rint(mag * scale6) / scale6
        # the 29 bits a float32 drops from a double, exactly 1000...0: a tie
        assert not ((y6.view(np.uint64) & 0xFFFFFFF) == 0x8000000).any()
        checked += bits.size
    assert checked == high - low


@pytest.mark.parametrize("value", [1e-5, -1e6, 3.0e7, 1e-45, math.nan, math.inf, -math.inf])
def test_fixed_notation_path_splices_in_a_few_other_numbers(value: float) -> None:
    """Numbers outside fixed notation (float32(1e-4) is just below 1e-4 too) are formatted one
    by one and spliced in; past _FEW_OTHERS of them the token path writes the whole tensor."""
    rng = np.random.default_rng(5)
    values = rng.standard_normal((3, SMALL)).astype(np.float32)
    values[0, 5] = values[2, 0] = values[2, -1] = value
    values[1, 3] = np.float32(1e-4)
    text = _float32_json_fixed(values)
    assert text is not None
    assert text.decode() == nest_tokens(float_tokens(values), values.shape)
    many = np.full(_FEW_OTHERS + 1, value, dtype=np.float32)
    assert _float32_json_fixed(np.concatenate([values.ravel(), many])) is None


def test_fixed_notation_path_with_random_exotic_numbers() -> None:
    rng = np.random.default_rng(3)
    exotic = np.array(
        [math.nan, math.inf, -math.inf, 1e-7, -3e-9, 1e6, -2.5e7, 1e-45, 3.4e38, 0.0, -0.0],
        dtype=np.float32,
    )
    for trial in range(200):
        count = int(rng.integers(SMALL + 1, 3000))
        values = (rng.standard_normal(count) * 10.0 ** rng.integers(-3, 5, count)).astype(
            np.float32
        )
        spots = rng.integers(0, count, int(rng.integers(0, 80)))
        values[spots] = rng.choice(exotic, len(spots))
        if trial % 2:
            values = values.reshape(1, count)
        text = float_json(values)
        expected = nest_tokens(float_tokens(values), values.shape)
        assert (text if isinstance(text, str) else text.decode()) == expected


@pytest.mark.parametrize("value", [v for v, _ in FLOAT32_TEXT if math.isfinite(v)])
def test_float32_text_reads_back_exactly(value: float) -> None:
    assert np.float32(float(format_float32(value))) == np.float32(value)


@pytest.mark.parametrize(
    ("shape", "text"),
    [((), "1"), ((3,), "[1,2,3]"), ((2, 0), "[[],[]]"), ((0, 3), "[]"), ((1, 2, 1), "[[[1],[2]]]")],
)
def test_nest_tokens(shape: tuple[int, ...], text: str) -> None:
    count = int(np.prod(shape))
    assert nest_tokens([str(i + 1) for i in range(count)], shape) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (1e21, "1e21"),
        (1e20, "100000000000000000000.0"),
        (1e-7, "1e-7"),
        (1.5e-6, "0.0000015"),
        (123.456, "123.456"),
        (1.2345e30, "1.2345e30"),
        (-2.5, "-2.5"),
        (0.0, "0.0"),
    ],
)
def test_rapidjson_double(value: float, text: str) -> None:
    assert rapidjson_double(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('a"b', '"a\\"b"'),
        (5, "5"),
        (0.1, "0.1"),
        (1e300, "1e+300"),
        (True, "true"),
        (None, "null"),
        ([], "[]"),
        ({}, "{}"),
        ({"a": [1, 2.0]}, '{\n    "a": [\n        1,\n        2.0\n    ]\n}'),
    ],
)
def test_value_to_string_uses_prettywriter_layout(value: object, text: str) -> None:
    assert value_to_string(value) == text


@pytest.mark.parametrize(
    "shape", [(), (4,), (3, 1), (1, 1), (2, 3), (2, 0), (0, 2), (2, 2, 2), (1, 3, 1, 2)]
)
def test_nest_tokens_nests_like_the_array(shape: tuple[int, ...]) -> None:
    import json

    import numpy as np

    count = int(np.prod(shape))
    tokens = [str(i) for i in range(max(count, 1))][: count if shape else 1]
    expected = np.arange(len(tokens)).reshape(shape).tolist()
    assert json.loads(nest_tokens(tokens, shape)) == expected
