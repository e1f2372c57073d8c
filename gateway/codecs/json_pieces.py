"""A large predict body of one float tensor read in pieces, so its parse holds no copy of it.

simdjson parses a document into its own padded copy plus a tape of 16 bytes per number: 11 MB
resident for the 5.3 MB of JSON of a 1 MB float32 tensor, kept by the parser for the next body,
beside the body itself and the answer being built (docs/performance.md: the REST door's peak
RSS). Here the body's one array (``{"instances": [...]}`` or ``{"inputs": [...]}``, with an
optional ``"signature_name"`` before or after) is parsed a quarter of a megabyte at a time
into doubles, joined once, and its shape is checked from its brackets and commas alone.

A piece is cut at a comma between two numbers and wrapped in as many brackets as the array is
deep at its start, which makes it a JSON document of its own: simdjson checks each number's
syntax and that the piece holds nothing but numbers and lists. The shape check: the array's
text without its numbers and whitespace (its skeleton, about 2 bytes a number) must equal the
skeleton of the rectangular array its first elements describe, ``[[,,],[,,]]`` for 2 x 3, so
every list has its length, and the numbers read must be that shape's count. Only pieces with a
bracket in them are scanned for it; the others' skeleton is their commas, one fewer than their
numbers. Parsed so, the body reads faster than whole (6.4 against 7.1 ms for 1 MB of float32).

Like ``json_numeric``, this path only ever says yes: anything else (other keys, escapes, a name
with "]" in it, ragged lists, strings, NaN) is None, and the caller reads the body whole.
"""

from __future__ import annotations

import math
import re
from typing import cast

import numpy as np
import simdjson

PIECE = 1 << 18  # bytes of JSON per parse: a parser sized for this stays at about 0.6 MB

_SPACES = b" \t\n\r"  # JSON's whitespace (RFC 8259 2)
_WS = b"[" + _SPACES + b"]*"
_NAME = _WS + rb'"signature_name"' + _WS + rb":" + _WS + rb'"([^"\\\x00-\x1f]*)"' + _WS
_HEAD = re.compile(
    _WS + rb"\{(?:" + _NAME + rb",)?" + _WS + rb'"(instances|inputs)"' + _WS + b":" + _WS
)
_TAIL = re.compile(rb"\]" + _WS + rb"(?:," + _NAME + rb")?\}" + _WS + rb"\Z")
_NOT_STRUCTURE = b"0123456789.eE+-" + _SPACES  # deleted for the skeleton
_SPACE = frozenset(_SPACES)


def read(body: bytes, parser: simdjson.Parser) -> tuple[str, bool, np.ndarray] | None:
    """``(signature_name, row_format, doubles)`` of ``body``, or None when it is not one
    rectangular numeric array in the shapes above (the caller then reads it whole)."""
    head = _HEAD.match(body)
    if head is None:
        return None
    start = head.end()
    end = body.rfind(b"]") + 1
    tail = _TAIL.match(body, end - 1) if end > start else None
    if tail is None or body[start : start + 1] != b"[":
        return None
    named = head.group(1), tail.group(1)
    if named[0] is not None and named[1] is not None:
        return None  # a duplicate key: the exact path's error
    try:
        name = (named[0] or named[1] or b"").decode()
    except UnicodeDecodeError:
        return None
    read = _numbers(body, start, end, parser)
    if read is None:
        return None
    doubles, skeleton = read
    shape = _shape(skeleton)
    if shape is None or math.prod(shape) != doubles.size:
        return None
    return name, head.group(2) == b"instances", doubles.reshape(shape)


def _shape(skeleton: bytes) -> list[int] | None:
    """The shape whose skeleton ``skeleton`` is, or None when it is no rectangular array's."""
    depth = len(skeleton) - len(skeleton.lstrip(b"["))
    first = skeleton.find(b"]")
    if depth == 0 or first < depth:
        return None
    shape = [first - depth + 1]  # the first leaf list's commas, plus one
    item = b"[" + b"," * (shape[0] - 1) + b"]"
    for level in range(depth - 2, -1, -1):
        step = len(item) + 1
        if level == 0:  # the outermost list: the skeleton's length gives its count
            count, rest = divmod(len(skeleton) - 1, step)
            if rest:
                return None
        else:  # the first list at this level: its items, counted while they repeat
            count, at = 1, level + step
            while skeleton[at : at + 1] == b"," and skeleton.startswith(item, at + 1):
                count, at = count + 1, at + step
        shape.insert(0, count)
        item = b"[" + b",".join([item] * count) + b"]"
    return shape if item == skeleton else None


def _numbers(
    body: bytes, start: int, end: int, parser: simdjson.Parser
) -> tuple[np.ndarray, bytes] | None:
    """The numbers of the array at ``body[start:end]``, parsed piece by piece, and its skeleton.

    A piece with no bracket in it lies within one leaf list: its skeleton is its commas, one
    fewer than its numbers, and its text is not scanned again for them."""
    depth, at = 0, start
    while body[at] == 0x5B or body[at] in _SPACE:  # "[": the leading brackets, to the leaves
        depth += body[at] == 0x5B
        at += 1
    # Each piece's doubles, joined once at the end: a buffer for the most numbers the text could
    # hold (one per 2 bytes) was 21 MB for a 5.3 MB body. Few of its pages were written, but
    # freed, glibc's dynamic mmap threshold rose to its size, and the heap grew around it.
    flats: list[np.ndarray] = []
    skeleton: list[bytes] = []
    opened, closed = b"[" * depth, b"]" * depth
    at = start
    while at < end:
        cut = _cut(body, at + PIECE, end)
        text = body[at:cut]
        bracketed = at == start or cut == end or b"[" in text or b"]" in text
        if bracketed:
            skeleton.append(text.translate(None, _NOT_STRUCTURE))
        if at != start:
            text = opened + text
        if cut != end:
            text += closed
        at = cut + 1
        document: simdjson.Array | None = None
        try:
            document = cast(simdjson.Array, parser.parse(text))  # a list: the wrapping's
            flat = np.frombuffer(document.as_buffer(of_type="d"), np.float64)
        except (ValueError, TypeError):  # syntax, NaN, beyond double, not numbers
            return None
        finally:
            document = None  # the parser may be reused only once its views are gone
        if not bracketed:
            skeleton.append(b"," * (flat.size - 1))
        flats.append(flat)
    return np.concatenate(flats), b",".join(skeleton)


def _cut(body: bytes, at: int, end: int) -> int:
    """The first comma from ``at`` between two numbers (not between lists), or ``end``."""
    while at < end:
        comma = body.find(b",", at, end)
        if comma < 0:
            return end
        before = comma - 1
        while body[before] in _SPACE:
            before -= 1
        if body[before] != 0x5D:  # "]": a comma between lists
            return comma
        at = comma + 1
    return end
