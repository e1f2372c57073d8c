"""HPACK header-block decoding (RFC 7541) for the gRPC door's HTTP/2 connections.

The ``hpack`` library's ``Decoder`` costs about 60 us per gRPC request header block here, most
of the door's budget; this one walks the block once with the representations gRPC clients send
(after the first call nearly every field is a one-byte index into the dynamic table). The static
table and Huffman decoding are the ``hpack`` library's, recurring Huffman strings memoized, and
whole blocks too while the dynamic table stands still: a client's calls on one connection send
the same block again and again (h2load's, grpc-core's without a deadline).
Encoding needs no state: the door writes literals without indexing (``literal``), which every
decoder accepts.
"""

from __future__ import annotations

from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

from gateway.memo import remember

Header = tuple[bytes, bytes]

STATIC: tuple[Header, ...] = HeaderTable.STATIC_TABLE
_STATIC_COUNT = len(STATIC)
DEFAULT_TABLE_SIZE = 4096  # SETTINGS_HEADER_TABLE_SIZE the door announces (the default)
_ENTRY_OVERHEAD = 32  # RFC 7541 4.1


class HpackError(Exception):
    """A malformed header block: a COMPRESSION_ERROR of the whole connection (RFC 9113 4.3)."""


# Blocks remembered per connection (emptied when full, and whenever the dynamic table changes,
# since an indexed field's meaning is the table's); longer blocks are decoded every time.
_KNOWN_BLOCKS = 16
_KNOWN_LONGEST = 512


class Decoder:
    """One connection's decoding state: the dynamic table, newest entry first."""

    def __init__(self, max_list_size: int) -> None:
        self._table: list[Header] = []
        self._size = 0
        self._max_size = DEFAULT_TABLE_SIZE
        self._max_list_size = max_list_size
        self._known: dict[bytes, tuple[Header, ...]] = {}
        self._changes = 0  # of the dynamic table

    def decode(self, block: bytes) -> tuple[Header, ...]:
        """The block's header list (a tuple shared by every call that sent the same block)."""
        known = self._known.get(block)
        if known is not None:
            return known
        changes = self._changes
        headers = tuple(self._walk(block))
        if self._changes != changes:  # this block changed the table: the blocks known are stale
            self._known.clear()
        elif len(block) <= _KNOWN_LONGEST:
            if len(self._known) >= _KNOWN_BLOCKS:
                self._known.clear()
            self._known[block] = headers
        return headers

    def _walk(self, block: bytes) -> list[Header]:
        headers: list[Header] = []
        append = headers.append
        pos = 0
        end = len(block)
        listed = 0
        try:
            while pos < end:
                first = block[pos]
                if first & 0x80:  # indexed field (6.1)
                    if first != 0xFF:
                        index = first & 0x7F
                        pos += 1
                    else:
                        index, pos = _integer(block, pos, 7)
                    header = self._entry(index)
                elif first & 0x40:  # literal with incremental indexing (6.2.1)
                    header, pos = self._literal(block, pos, 6)
                    self._add(header)
                elif first & 0x20:  # dynamic table size update (6.3)
                    size, pos = _integer(block, pos, 5)
                    if size > DEFAULT_TABLE_SIZE:
                        raise HpackError(f"table size {size} above the announced maximum")
                    self._max_size = size
                    self._shrink(size)
                    self._changes += 1
                    continue
                else:  # literal without indexing / never indexed (6.2.2, 6.2.3)
                    header, pos = self._literal(block, pos, 4)
                listed += len(header[0]) + len(header[1]) + _ENTRY_OVERHEAD
                if listed > self._max_list_size:
                    raise HpackError("header list larger than the announced maximum")
                append(header)
        except IndexError:
            raise HpackError("truncated header block") from None
        return headers

    def _entry(self, index: int) -> Header:
        if 0 < index <= _STATIC_COUNT:
            return STATIC[index - 1]
        dynamic = index - _STATIC_COUNT - 1
        if index == 0 or dynamic >= len(self._table):
            raise HpackError(f"header index {index} out of range")
        return self._table[dynamic]

    def _literal(self, block: bytes, pos: int, prefix: int) -> tuple[Header, int]:
        index, pos = _integer(block, pos, prefix)
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        return (name, value), pos

    def _add(self, header: Header) -> None:
        self._changes += 1
        size = len(header[0]) + len(header[1]) + _ENTRY_OVERHEAD
        if size > self._max_size:  # 4.4: an entry larger than the table empties it
            self._table.clear()
            self._size = 0
            return
        self._shrink(self._max_size - size)
        self._table.insert(0, header)
        self._size += size

    def _shrink(self, limit: int) -> None:
        while self._size > limit:
            name, value = self._table.pop()
            self._size -= len(name) + len(value) + _ENTRY_OVERHEAD


def _integer(block: bytes, pos: int, prefix: int) -> tuple[int, int]:
    """An integer with an N-bit prefix (5.1)."""
    mask = (1 << prefix) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise HpackError("integer too large")


def _string(block: bytes, pos: int) -> tuple[bytes, int]:
    huffman = block[pos] & 0x80
    length, pos = _integer(block, pos, 7)
    stop = pos + length
    if stop > len(block):
        raise HpackError("string runs past the header block")
    raw = block[pos:stop]
    if huffman:
        raw = _MEMO.get(raw) or _huffman(raw)
    return raw, stop


# Huffman-coded literals recur call after call: nghttp2's encoder (h2load, curl, Envoy and so
# Istio in front of the door) never indexes :path or content-length (hd_deflate_should_indexing),
# so each call carries its path as a Huffman literal, and the library's decoder walks it bit by
# bit in Python (about a third of the door's do-nothing cost per h2load call, cProfile). A
# bounded memo of short ones (gateway/memo.py).
_MEMO: dict[bytes, bytes] = {}
_MEMO_ENTRIES = 1024
_MEMO_LONGEST = 256


def _huffman(raw: bytes) -> bytes:
    try:
        decoded: bytes = decode_huffman(raw)
    except Exception as exc:  # the library's HPACKDecodingError
        raise HpackError(f"bad Huffman string: {exc}") from None
    if decoded and len(raw) <= _MEMO_LONGEST:
        remember(_MEMO, raw, decoded, _MEMO_ENTRIES)
    return decoded


def literal(name: bytes, value: bytes) -> bytes:
    """One header as a literal without indexing and a new name (6.2.2): no decoder state."""
    return b"\x00" + _encode_integer(len(name), 7) + name + _encode_integer(len(value), 7) + value


def _encode_integer(value: int, prefix: int) -> bytes:
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes((value,))
    out = bytearray((mask,))
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
