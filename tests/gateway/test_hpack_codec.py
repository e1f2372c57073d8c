"""The gRPC door's HPACK decoder against RFC 7541's own examples and the ``hpack`` library."""

from __future__ import annotations

import random

import hpack
import pytest

from gateway.hpack_codec import Decoder, HpackError, literal


def _block(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# RFC 7541 C.3 (requests without Huffman) and C.4 (the same with Huffman), one connection each.
C3 = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
]
C4 = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
]
EXPECTED = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")]
    + [(b":authority", b"www.example.com")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")]
    + [(b":authority", b"www.example.com"), (b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html")]
    + [(b":authority", b"www.example.com"), (b"custom-key", b"custom-value")],
]


@pytest.mark.parametrize("blocks", [C3, C4], ids=["plain", "huffman"])
def test_rfc_7541_request_examples(blocks: list[str]) -> None:
    decoder = Decoder(1 << 16)
    for block, expected in zip(blocks, EXPECTED, strict=True):
        assert list(decoder.decode(_block(block))) == expected


def test_agrees_with_the_hpack_library_over_a_long_connection() -> None:
    """Random gRPC-like header lists through the library's encoder (indexing, Huffman, a small
    table that evicts, a table size update midway): every block decodes to what was encoded."""
    rng = random.Random(7)
    encoder = hpack.Encoder()
    decoder = Decoder(1 << 20)
    names = [b"x-request-id", b"grpc-timeout", b"user-agent", b"x-route-key", b"custom-bin"]
    previous: list[tuple[bytes, bytes]] = []
    for round_ in range(2000):
        if round_ == 700:
            encoder.header_table_size = 256  # emits a dynamic table size update
        headers = [
            (b":method", b"POST"),
            (b":path", b"/tensorflow.serving.PredictionService/Predict"),
            (b"content-type", b"application/grpc"),
        ]
        if rng.random() < 0.3 and round_:  # a call like the one before: a block seen again
            headers = previous
        for name in (
            rng.sample(names, rng.randint(0, len(names))) if headers is not previous else ()
        ):
            value = bytes(rng.choice(b"abcdefxyz0123456789-") for _ in range(rng.randint(0, 300)))
            headers.append((name, value))
        previous = headers
        sensitive = rng.random() < 0.2
        block = encoder.encode(
            [hpack.NeverIndexedHeaderTuple(*h) if sensitive else h for h in headers],
            huffman=rng.random() < 0.5,
        )
        assert list(decoder.decode(block)) == headers


def test_a_block_seen_again_is_decoded_by_the_table_of_its_time() -> None:
    """The same bytes mean other headers once the dynamic table changed: a remembered block is
    answered only while the table stands still."""
    decoder = Decoder(1 << 16)
    index_62 = b"\xbe"  # the newest dynamic entry
    decoder.decode(b"\x40\x01x\x01a")  # literal with incremental indexing: x: a
    first = decoder.decode(index_62)
    assert first == ((b"x", b"a"),)
    assert decoder.decode(index_62) is first  # remembered
    decoder.decode(b"\x40\x01x\x01b")  # x: b is entry 62 now
    assert decoder.decode(index_62) == ((b"x", b"b"),)
    assert decoder.decode(b"\x20") == ()  # a table size update to 0 empties it
    with pytest.raises(HpackError):
        decoder.decode(index_62)


def test_literals_the_door_writes_read_back() -> None:
    block = literal(b"grpc-status", b"0") + literal(b"grpc-message", b"x" * 300)
    assert hpack.Decoder().decode(block, raw=True) == [
        (b"grpc-status", b"0"),
        (b"grpc-message", b"x" * 300),
    ]


@pytest.mark.parametrize(
    "block",
    [
        "be",  # dynamic index 62 with an empty table
        "80",  # index 0
        "4005 6e61 6d65",  # a literal whose value is missing
        "3fe2 1f",  # a table size update above the announced 4096
        "ff ffff ffff ff",  # an integer that never ends
    ],
)
def test_malformed_blocks_are_errors(block: str) -> None:
    with pytest.raises(HpackError):
        Decoder(1 << 16).decode(_block(block))


def test_a_header_list_past_the_limit_is_refused() -> None:
    block = hpack.Encoder().encode([(b"x-big", b"v" * 5000)])
    with pytest.raises(HpackError, match="header list"):
        Decoder(4096).decode(block)


def test_recurring_huffman_literals_decode_the_same_from_the_memo() -> None:
    """nghttp2-style blocks (the path and content-length as Huffman literals without indexing,
    every call): each decodes to what was encoded, the first time and from the memo, which stays
    bounded however many distinct strings pass; a bad Huffman string stays an error."""
    from gateway import hpack_codec

    decoder = Decoder(1 << 16)
    for call in range(3 * hpack_codec._MEMO_ENTRIES):
        path = f"/tensorflow.serving.PredictionService/Predict{call % 1500}"
        headers = [(":method", "POST"), (":path", path), ("content-length", str(30 + call % 7))]
        block = b"\x83" + b"".join(b"\x00" + _literal(*header) for header in headers[1:])
        assert list(decoder.decode(block)) == [(k.encode(), v.encode()) for k, v in headers]
        assert len(hpack_codec._MEMO) <= hpack_codec._MEMO_ENTRIES
    with pytest.raises(HpackError):
        Decoder(1 << 16).decode(b"\x00\x81\x00\x81\xff")  # padding that is not all ones
    with pytest.raises(HpackError):  # not memoized as anything
        Decoder(1 << 16).decode(b"\x00\x81\x00\x81\xff")


def _literal(name: str, value: str) -> bytes:
    """A literal without indexing with a Huffman-coded new name and value (RFC 7541 6.2.2)."""
    from hpack.huffman import HuffmanEncoder
    from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

    huffman = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
    out = b""
    for text in (name, value):
        coded = huffman.encode(text.encode())
        assert len(coded) < 127
        out += bytes((0x80 | len(coded),)) + coded
    return out
