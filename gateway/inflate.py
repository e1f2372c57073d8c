"""Compressed request bodies inflated with a bound held while inflating (both front doors).

A few kilobytes of gzip can inflate to gigabytes, so the limit is given to zlib, not checked on
the whole result afterwards.
"""

from __future__ import annotations

import zlib

GZIP = 16 + zlib.MAX_WBITS
DEFLATE = zlib.MAX_WBITS


def inflate(data: bytes | memoryview, wbits: int, limit: int) -> bytes:
    """``data`` inflated, or only its first ``limit`` + 1 bytes when it inflates past ``limit``
    (the caller says what that means). Corrupt or truncated data raises ``zlib.error``."""
    inflater = zlib.decompressobj(wbits)
    inflated = inflater.decompress(data, limit + 1)
    if len(inflated) <= limit and not inflater.eof:
        raise zlib.error("truncated")
    return inflated
