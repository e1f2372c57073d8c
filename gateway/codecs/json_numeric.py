"""The common ``:predict`` body read without a Python object per number: float tensors only.

``{"instances": [[0.1, ...], ...]}``, ``{"inputs": [...]}`` or ``{"inputs": {"x": [...], ...}}``
(with an optional ``"signature_name"``) are the bodies online models get. The exact path
(``json_requests``) parses them with orjson, which builds a Python float per number, then numpy
reads them back: for one 1024-float row that was two thirds of the gateway's decode. Here
simdjson parses the body and copies each numeric array straight into a buffer of doubles.

This path only ever says yes: it answers when the body is a dense numeric array per input that the
exact path would accept with the same values, and returns None for anything else (strings,
booleans, nulls, objects as instances, NaN/Infinity literals, ragged or empty lists, integers
too large for the input's type, other dtypes), so the exact path gives TF Serving's answer or
error for those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import simdjson

from gateway import heap
from gateway.codecs import json_pieces
from gateway.codecs.json_tensors import MAX_EXACT_INT
from tfsgate.core.signatures import SignatureSpec

# Small bodies are cheaper through orjson (simdjson's views cost more than a few floats); a body
# whose first array starts with a string or an object (text, base64, named instances) is refused
# without parsing it.
MIN_BYTES = 256
_LOOK = 64
_FLOATS = {"DT_FLOAT": (np.float32, "float"), "DT_DOUBLE": (np.float64, "double")}
_KEYS = frozenset(("signature_name", "instances", "inputs"))
_parser = simdjson.Parser()
# A parser keeps the buffers of the largest body it has read, resident (11 MB after a 5 MB body:
# its padded copy, the tape, the structural indexes). Above this, a body of one array is read in
# pieces (json_pieces) that keep it small; one read whole instead is replaced
# at the first heap trim (gateway/heap.py) with no such body since the trim before, so a process
# that once read megabytes does not hold them. Replaced sooner (a parser per large body, or at
# every trim during a burst) each new one faulted its buffers in anew: 15 % less throughput on
# 1 MB tensors and a higher peak.
REUSED_UP_TO = 1 << 20
_grown = False  # the parser read a body above REUSED_UP_TO
_large_since_trim = False


def _drop_grown_parser() -> bool:
    global _parser, _grown, _large_since_trim
    if _large_since_trim:  # a burst of large bodies goes on: keep the parser, look again later
        _large_since_trim = False
        return True
    if _grown:
        _parser = simdjson.Parser()
        _grown = False
    return False


heap.TRIMMER.before_trim(_drop_grown_parser)


@dataclass(frozen=True)
class NumericBody:
    """A predict body's tensors as doubles; ``arrays`` is keyed by input name, or by "" for the
    single unnamed tensor of ``instances`` or of a plain ``inputs`` list."""

    signature_name: str
    row_format: bool
    arrays: dict[str, np.ndarray]

    def tensors(self, spec: SignatureSpec) -> dict[str, np.ndarray] | None:
        """The tensors for ``spec``, or None when the exact path must decide (wrong names, not a
        float input, a number the input's type cannot hold as the exact path would)."""
        inputs = spec.inputs
        if "" in self.arrays:
            if len(inputs) != 1:
                return None
            named = {next(iter(inputs)): self.arrays[""]}
        elif set(self.arrays) == set(inputs):
            named = self.arrays
        else:
            return None
        tensors = {}
        for key, wide in named.items():
            found = _FLOATS.get(inputs[key].dtype)
            if found is None:
                return None
            # The exact path accepts larger numbers only after checking each is not an integer
            # beyond the type's exact range (or a float beyond float32's): left to it. (NaN fails
            # both; max and min, not abs: no temporary the size of the tensor.)
            bound = MAX_EXACT_INT[found[1]]
            if not (wide.max() <= bound and wide.min() >= -bound):
                return None
            tensors[key] = wide.astype(found[0], copy=False)
        return tensors


def parse_predict(body: bytes) -> NumericBody | None:
    """``body`` as a ``NumericBody``, or None when the exact path must read it."""
    if len(body) < MIN_BYTES:
        return None
    start = body.find(b"[")
    # Escapes would make a string's "[" count differ from its text's (see _numeric_body).
    if start < 0 or b'"' in body[start : start + _LOOK] or b"\\" in body:
        return None
    global _parser, _grown, _large_since_trim
    if len(body) > REUSED_UP_TO:
        try:
            pieces = json_pieces.read(body, _parser)
        except RuntimeError:  # a view of the last body still alive: a new parser
            _parser = simdjson.Parser()
            pieces = json_pieces.read(body, _parser)
        if pieces is not None:
            name, row_format, doubles = pieces
            return NumericBody(name, row_format, {"": doubles})
        _grown = _large_since_trim = True
    try:
        document = _parser.parse(body)
    except RuntimeError:  # a view of the last body still alive (an exception's frame)
        _parser = simdjson.Parser()
        return None
    except ValueError:  # not JSON simdjson reads (syntax, NaN, numbers beyond double)
        return None
    try:
        return _numeric_body(document, body.count(b"["))
    finally:
        del document  # the parser may be reused only once its views are gone


def _numeric_body(document: object, brackets: int) -> NumericBody | None:
    """``brackets``: the "[" in the body's text. The walk below checks every list's length down
    to the level of the first leaf, not what the innermost lists hold: a leaf nested deeper
    (``[[1.5, [2.5]]]``) is one "[" more than the lists walked and the strings hold."""
    if not isinstance(document, simdjson.Object):
        return None
    keys = list(document.keys())
    if len(set(keys)) != len(keys) or not set(keys) <= _KEYS:
        return None  # duplicate or other keys: the exact path's rules
    has_instances, has_inputs = "instances" in keys, "inputs" in keys
    if has_instances == has_inputs:
        return None
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        return None
    brackets -= name.count("[")
    value = document["instances" if has_instances else "inputs"]
    arrays: dict[str, np.ndarray] = {}
    if isinstance(value, simdjson.Array):
        if has_instances and len(value) and isinstance(value[0], simdjson.Object):
            return None  # instances as objects: named inputs, the exact path
        items = {"": value}
    elif has_inputs and isinstance(value, simdjson.Object):
        items = {key: cast(simdjson.Array, value[key]) for key in value}
        if not items or len(items) != len(value):
            return None
    else:
        return None
    for key, item in items.items():
        dense = _dense(item) if isinstance(item, simdjson.Array) else None
        if dense is None:
            return None
        arrays[key], lists = dense
        brackets -= lists + key.count("[")
    return NumericBody(name, has_instances, arrays) if brackets == 0 else None


def _dense(array: simdjson.Array) -> tuple[np.ndarray, int] | None:
    """A rectangular array of numbers as doubles (``GetDenseTensorShape`` + the bulk path's
    checks) and the number of lists it was made of; None when it is empty, ragged or holds
    anything but numbers and lists."""
    shape = []
    node: object = array
    while isinstance(node, simdjson.Array):
        if not len(node):
            return None
        shape.append(len(node))
        node = node[0]
    lists = _count_lists(array, shape, 0)
    if lists is None:
        return None
    try:
        buffer = array.as_buffer(of_type="d")  # numbers only, ints as doubles, flattened
    except (TypeError, ValueError):
        return None
    flat = np.frombuffer(buffer, dtype=np.float64)
    if flat.size != math.prod(shape):
        return None
    return flat.reshape(shape), lists


def _count_lists(array: simdjson.Array, shape: list[int], level: int) -> int | None:
    """How many lists a rectangular array of ``shape`` has from ``level`` down, checking each
    one's length; None at the first that differs."""
    if len(array) != shape[level]:
        return None
    if level == len(shape) - 1:
        return 1
    total = 1
    for item in array:
        if not isinstance(item, simdjson.Array):
            return None
        below = _count_lists(item, shape, level + 1)
        if below is None:
            return None
        total += below
    return total
