"""Bounded memos of the hot path: what clients send again and again (a path, a Huffman literal,
a call's shapes), remembered in a dict that is emptied when full. Emptied rather than evicted one
by one: the keys come from clients, and a client that cycles through more of them than fit only
costs the misses it would have cost with no memo. The lookup is the caller's ``dict.get`` (no
call in the way on a hit); ``remember`` is the miss."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, entries: int) -> V:
    """``value``, stored under ``key`` in ``memo``, which holds at most ``entries``."""
    if len(memo) >= entries:
        memo.clear()
    memo[key] = value
    return value
