"""JSON text exactly as TF Serving's REST layer reads and writes it (rapidjson underneath).

- Parsing: orjson first; only when it refuses do we parse again with the standard library, which
  also accepts the ``NaN``/``Infinity``/``-Infinity`` literals TF accepts. Syntax errors get
  rapidjson's wording ("JSON Parse error: Invalid value. at offset: 7").
- Numbers out: TF's ``WriteDecimal``: ``%g`` with 6 significant digits when that reads back as the
  same value, else 9 (float) or 17 (double) digits; ".0" appended to whole numbers; ``NaN``,
  ``Infinity``, ``-Infinity`` for non-finite values. So float32 0.1 is ``0.1`` and 1/3 is
  ``0.333333343`` (not ``0.33333334``, which is what a shortest-repr writer would print).
- Values quoted in error messages: rapidjson's ``PrettyWriter`` layout (4-space indent).
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
import orjson

from tfsgate.core.status import invalid_argument

FLT_MAX = float(np.finfo(np.float32).max)
# Up to this many elements, a tensor's numbers are checked and formatted one by one in Python:
# numpy's fixed cost per call (half a dozen calls per tensor) is more than the loop for a
# typical online request (measured: a 3-float predict spent ~20% of the REST door's CPU there).
SMALL = 32
_FLOAT32 = struct.Struct("<f")
INT64_MIN = -(2**63)
UINT64_END = 2**64

# rapidjson's GetParseError_En texts for the standard library's messages.
_PARSE_ERRORS = {
    "Expecting value": "Invalid value.",
    "Extra data": "The document root must not be followed by other values.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}


# --------------------------------------------------------------------------- parsing


def parse_json(body: bytes | str) -> Any:
    """Parse a request body once. INVALID_ARGUMENT "JSON Parse error: ..." when it is not JSON."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # NaN/Infinity literals, or a real syntax error: let the tolerant parser decide
    return _parse_tolerant(body)


def _parse_int(text: str) -> int | float:
    """Integers rapidjson cannot hold as int64/uint64 become doubles there; same here."""
    value = int(text)
    return value if INT64_MIN <= value < UINT64_END else float(value)


def _parse_tolerant(body: bytes | str) -> Any:
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as err:
        raise invalid_argument(
            f"JSON Parse error: Invalid encoding in string. at offset: {err.start}"
        ) from None
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as err:
        raise invalid_argument(
            f"JSON Parse error: {_parse_error_text(err, text)} at offset: {err.pos}"
        ) from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: Unspecific syntax error.") from None


def _parse_error_text(err: json.JSONDecodeError, text: str) -> str:
    if not text.strip():
        return "The document is empty."
    if err.msg == "Expecting ',' delimiter":
        return _missing_comma_text(text[: err.pos])
    return _PARSE_ERRORS.get(err.msg, "Invalid value.")


def _missing_comma_text(prefix: str) -> str:
    """rapidjson names the container whose comma is missing; find the innermost open one."""
    stack: list[str] = []
    in_string = escaped = False
    for char in prefix:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    if stack and stack[-1] == "{":
        return "Missing a comma or '}' after an object member."
    return "Missing a comma or ']' after an array element."


# --------------------------------------------------------------------------- numbers out


def format_float32(value: float) -> str:
    """One float32 as TF Serving writes it (``WriteDecimal<float>``); doubles are rounded first."""
    return _format_decimal(float(np.float32(value)), 9, _float32_roundtrips)


def format_float64(value: float) -> str:
    """One double as TF Serving writes it (``WriteDecimal<double>``)."""
    return _format_decimal(float(value), 17, lambda text, v: float(text) == v)


def _float32_roundtrips(text: str, value: float) -> bool:
    return bool(np.float32(float(text)) == np.float32(value))


def _format_decimal(value: float, digits: int, roundtrips: Any) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:.6g}"
    if not roundtrips(text, value):
        text = f"{value:.{digits}g}"
    return _add_point_zero(text)


def _add_point_zero(text: str) -> str:
    return text if ("." in text or "e" in text) else text + ".0"


def float_tokens(array: np.ndarray) -> list[str]:
    """Every element of a float array formatted like ``format_float32``/``format_float64``.

    Vectorised where it counts: one ``%.6g`` pass, one numpy read-back to find the values that do
    not survive 6 digits, and a second pass only for those.
    """
    double = array.dtype == np.float64
    if array.size <= SMALL:
        if not double and array.dtype != np.float32:
            array = array.astype(np.float32)
        return _small_float_tokens(array.ravel().tolist(), double)
    typed = array.astype(np.float64 if double else np.float32, copy=False).ravel()
    values = typed.astype(np.float64).tolist()
    six = "%.6g".__mod__
    tokens = [six(v) for v in values]
    finite = np.isfinite(typed)
    back = np.array(tokens, dtype=np.float64)
    if not double:
        back = back.astype(np.float32)
    redo = np.flatnonzero((back != typed) & finite).tolist()
    full = f"%.{17 if double else 9}g".__mod__
    for index in redo:
        tokens[index] = full(values[index])
    tokens = [t if ("." in t or "e" in t) else t + ".0" for t in tokens]
    if not finite.all():
        for index in np.flatnonzero(~finite).tolist():
            tokens[index] = _format_decimal(values[index], 9, None)
    return tokens


def float_json(array: np.ndarray) -> str | bytes:
    """JSON text of a float tensor (nested lists, or a bare number for rank 0), numbers as
    ``float_tokens`` writes them."""
    if array.dtype != np.float64 and array.size > SMALL:
        text = _float32_json_fixed(array)
        if text is not None:
            return text
    return nest_tokens(float_tokens(array), array.shape)


_CHUNK = 16384
_FEW_OTHERS = 64  # numbers outside fixed notation spliced into the fixed-notation text at most
_MARKER = 1e300
_MARKER_TEXT = b"1e+300"


def _float32_json_fixed(array: np.ndarray) -> bytes | None:
    """``float_json`` for a float32 tensor whose numbers print in fixed notation (0 or
    1e-4 <= |x| < 1e6: online models' typical outputs), in a few numpy passes and one orjson call;
    up to ``_FEW_OTHERS`` other numbers (NaN, 1e-7, ...) are spliced in formatted one by one.

    For each x we compute the decimal TF would print, D6 (``%.6g``) when it reads back as x else
    D9 (``%.9g``), as the nearest double y. In this range the scaled values are exact products
    (x has 24 bits, 10**k <= 10**12 has at most 28 more), so ``rint`` rounds half to even as
    printf does; D has at most 9 digits, so y's shortest form (orjson, like Python's repr) is D's
    digits, in fixed notation with ".0" after whole numbers: TF's ``WriteDecimal`` text. None
    when more numbers are outside that range.
    """
    x = array.astype(np.float32, copy=False).ravel()
    y = np.empty(x.size)
    others: list[int] = []
    for start in range(0, x.size, _CHUNK):  # bounded temporaries for megabyte tensors
        found = _fixed_decimals(x[start : start + _CHUNK], y[start : start + _CHUNK])
        others += [start + index for index in found]
        if len(others) > _FEW_OTHERS:
            return None
    if not others:
        return orjson.dumps(y.reshape(array.shape), option=orjson.OPT_SERIALIZE_NUMPY)
    # The few numbers outside fixed notation go in by hand where a marker stands (no number in
    # fixed notation contains an "e").
    y[others] = _MARKER
    parts = orjson.dumps(y.reshape(array.shape), option=orjson.OPT_SERIALIZE_NUMPY).split(
        _MARKER_TEXT
    )
    tokens = [format_float32(float(x[i])).encode() for i in others]
    pairs = zip(parts[:-1], tokens, strict=True)
    return b"".join([part for pair in pairs for part in pair] + [parts[-1]])


def _fixed_decimals(x: np.ndarray, y: np.ndarray) -> list[int]:
    """Fill ``y`` with the doubles of TF's decimals for float32 ``x``; the indexes of numbers
    outside fixed notation are returned (their ``y`` is left to the caller)."""
    mag32 = np.abs(x)
    mag = mag32.astype(np.float64)
    # The decade of each number, exactly: no float32 lies strictly between 10**k and the double
    # nearest it, so a search among those doubles never lands one off as log10 can.
    decade = np.searchsorted(_DECADE_EDGES, mag, side="right")
    outside = _DECADE_OUTSIDE[decade]
    others = np.flatnonzero(outside).tolist() if outside.any() else []
    scale6 = _DECADE_SCALE6[decade]
    scale9 = scale6 * 1000.0
    y6 = np.rint(mag * scale6) / scale6
    y9 = np.rint(mag * scale9) / scale9
    # D6 reads back as x exactly when its double y6 does: no y6 of a float32 in fixed notation
    # lies halfway between two float32s, where rounding twice could differ (tested exhaustively).
    exact = np.where(y6.astype(np.float32) == mag32, y6, y9)
    np.copysign(exact, x.astype(np.float64), out=y)
    return others


# Decades for _fixed_decimals: index 0 is zero, 1 below 1e-4, 2 + k for 10**(k-4) <= x <
# 10**(k-3) (k = 0..9, %g's fixed notation), 12 for 1e6 and beyond, infinities and NaN.
_DECADE_EDGES = np.array([5e-324] + [10.0**k for k in range(-4, 7)])
_DECADE_OUTSIDE = np.array([False, True] + [False] * 10 + [True])
_DECADE_SCALE6 = np.array([1.0, 1.0] + [10.0 ** (9 - k) for k in range(10)] + [1.0])


def _small_float_tokens(values: list[float], double: bool) -> list[str]:
    """``float_tokens`` element by element (the same texts: tests/gateway/codecs)."""
    tokens = []
    digits = 17 if double else 9
    pack, unpack = _FLOAT32.pack, _FLOAT32.unpack
    for value in values:
        if not math.isfinite(value):
            tokens.append(_format_decimal(value, 9, None))
            continue
        text = f"{value:.6g}"
        if double:
            exact = float(text) == value
        else:  # whether the text reads back as float32 ``value`` (struct rounds as numpy does;
            # a text beyond float32's range does not read back), inline: 2.0 -> 1.7 us for three.
            try:
                exact = unpack(pack(float(text)))[0] == value
            except OverflowError:
                exact = False
        if not exact:
            text = f"{value:.{digits}g}"
        tokens.append(text if ("." in text or "e" in text) else text + ".0")
    return tokens


def nest_tokens(tokens: list[str], shape: tuple[int, ...]) -> str:
    """JSON array text of a tensor whose flattened elements are already JSON tokens."""
    if not shape:
        return tokens[0]
    if len(shape) == 1:
        return "[" + ",".join(tokens) + "]"
    if len(shape) == 2 and shape[0] and shape[1]:  # a batch of rows (one each: [[a],[b]])
        width = shape[1]
        if width == 1:
            return "[[" + "],[".join(tokens) + "]]"
        rows = [",".join(tokens[i : i + width]) for i in range(0, len(tokens), width)]
        return "[[" + "],[".join(rows) + "]]"
    inner = math.prod(shape[1:])
    nested = (nest_tokens(tokens[i * inner : (i + 1) * inner], shape[1:]) for i in range(shape[0]))
    return "[" + ",".join(nested) + "]"


# --------------------------------------------------------------------------- error texts


def json_type_string(value: Any) -> str:
    """rapidjson's ``JsonTypeString`` names: Null, False, True, Object, Array, String, Number."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def value_to_string(value: Any) -> str:
    """TF's ``JsonValueToString``: a top-level float goes through ``WriteDecimal`` (float when it
    fits a float, else double); everything else through rapidjson's ``PrettyWriter``."""
    if isinstance(value, float):
        if abs(value) <= FLT_MAX:
            return format_float32(value)
        return format_float64(value)
    return _pretty(value, 0)


def _pretty(value: Any, level: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = "    " * (level + 1)
        members = (f"{pad}{_quote(str(k))}: {_pretty(v, level + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(members) + "\n" + "    " * level + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        pad = "    " * (level + 1)
        items = (pad + _pretty(v, level + 1) for v in value)
        return "[\n" + ",\n".join(items) + "\n" + "    " * level + "]"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float):
        return rapidjson_double(value)
    return str(value)


def _quote(text: str) -> str:
    return orjson.dumps(text).decode("utf-8")


def rapidjson_double(value: float) -> str:
    """rapidjson ``Writer::Double``: shortest digits, laid out by its ``Prettify`` rules."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    return sign + _prettify(digits, exponent)


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits and exponent k with value == digits * 10**k."""
    if value == 0:
        return "0", 0
    mantissa, _, exp_text = repr(value).partition("e")
    whole, _, frac = mantissa.partition(".")
    frac = frac.rstrip("0")
    digits = (whole + frac).lstrip("0") or "0"
    exponent = (int(exp_text) if exp_text else 0) - len(frac)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped, exponent


def _prettify(digits: str, k: int) -> str:
    length = len(digits)
    kk = length + k  # 10^(kk-1) <= v < 10^kk
    if k >= 0 and kk <= 21:
        return digits + "0" * k + ".0"
    if 0 < kk <= 21:
        return digits[:kk] + "." + digits[kk:]
    if -6 < kk <= 0:
        return "0." + "0" * (-kk) + digits
    exp = f"e{kk - 1}"
    if length == 1:
        return digits + exp
    return digits[0] + "." + digits[1:] + exp
