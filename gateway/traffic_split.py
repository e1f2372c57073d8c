"""Weighted traffic over versions: sticky by route key, weighted random without one.

A route key is hashed with *weighted rendezvous hashing* (highest random weight: each version
scores ``-ln(u) / weight`` with ``u`` a uniform hash of (key, version); the lowest score wins).
It is consistent: when weights change, a key moves only when it has to. Going from 90/10 to
80/20 moves the keys that now belong to the grown share and no others (about 10 %), where a
cumulative-interval split over a sorted version list would reshuffle every later interval once a
third version is added. Without a key the choice is weighted random: one ``random()`` and a
bisect over precomputed cumulative weights.

Everything per split is computed once, when the routing table is built; a request pays one
``random()`` (no key) or one 8-byte BLAKE2b of the key plus one integer mix and ``log`` per
version (key).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Mapping
from hashlib import blake2b
from itertools import accumulate

_MASK64 = (1 << 64) - 1
_TWO_TO_53 = float(1 << 53)


def _mix64(value: int) -> int:
    """SplitMix64's finaliser: a well-spread 64-bit permutation of ``value``."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & _MASK64
    return value ^ (value >> 31)


def key_hash(key: str) -> int:
    """64 bits of a route key (BLAKE2b: stable across processes, unlike ``hash``)."""
    return int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "little")


class TrafficSplit:
    """An immutable weighted choice among versions; build once per routing table."""

    __slots__ = ("_cumulative", "_seeds", "_total", "_versions", "_weights")

    def __init__(self, weights: Mapping[int, float]) -> None:
        positive = sorted((v, float(w)) for v, w in weights.items() if w > 0)
        self._versions = tuple(v for v, _ in positive)
        self._weights = tuple(w for _, w in positive)
        self._cumulative = tuple(accumulate(self._weights))
        self._total = self._cumulative[-1] if positive else 0.0
        # Per-version seeds: the version number spread over 64 bits, mixed with the key hash.
        self._seeds = tuple(_mix64(v + 0x9E3779B97F4A7C15 & _MASK64) for v in self._versions)

    def __bool__(self) -> bool:
        return bool(self._versions)

    @property
    def versions(self) -> tuple[int, ...]:
        return self._versions

    def pick(self, route_key: str | None = None) -> int:
        """A version: sticky for ``route_key``, weighted random without one."""
        if route_key:
            return self.pick_hashed(key_hash(route_key))
        if len(self._versions) == 1:
            return self._versions[0]
        return self._versions[bisect_right(self._cumulative, random.random() * self._total)]

    def pick_hashed(self, hashed: int) -> int:
        best, best_score = self._versions[0], math.inf
        for version, weight, seed in zip(self._versions, self._weights, self._seeds, strict=True):
            # u in (0, 1]: 53 bits of the mixed hash, never 0 so the log is finite.
            u = ((_mix64(hashed ^ seed) >> 11) + 1) / _TWO_TO_53
            score = -math.log(u) / weight
            if score < best_score:
                best, best_score = version, score
        return best

    def without(self, versions: set[int]) -> TrafficSplit:
        """The split over the remaining versions (those not serving are skipped, not failed)."""
        return TrafficSplit(
            {v: w for v, w in zip(self._versions, self._weights, strict=True) if v not in versions}
        )
