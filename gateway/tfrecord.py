"""TFRecord framing, as TensorFlow's ``tf.io.TFRecordWriter`` writes it, without TensorFlow.

A record is: length (uint64, little endian), masked CRC32C of those 8 bytes (uint32), the data,
masked CRC32C of the data (uint32). The mask is TensorFlow's ``crc32c::Mask``: rotate right by
15 bits and add 0xa282ead8 (tensorflow/tsl/lib/hash/crc32c.h), so a CRC of data that embeds CRCs
does not collide. CRC32C comes from google-crc32c (hardware-accelerated C).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import google_crc32c

_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = _LENGTH.pack(len(data))
    return b"".join(
        (length, _CRC.pack(masked_crc32c(length)), data, _CRC.pack(masked_crc32c(data)))
    )


def read_records(stream: BinaryIO) -> Iterator[bytes]:
    """The records of a TFRecord stream; raises ValueError on a corrupt or truncated record."""
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise ValueError("truncated TFRecord header")
        (length,) = _LENGTH.unpack_from(header)
        (length_crc,) = _CRC.unpack_from(header, 8)
        if masked_crc32c(header[:8]) != length_crc:
            raise ValueError("corrupt TFRecord length")
        data = stream.read(length)
        footer = stream.read(4)
        if len(data) < length or len(footer) < 4:
            raise ValueError("truncated TFRecord data")
        if masked_crc32c(data) != _CRC.unpack(footer)[0]:
            raise ValueError("corrupt TFRecord data")
        yield data
