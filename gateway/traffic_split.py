"""Weighted traffic over versions: sticky by route key, weighted random without one.

A route key is hashed with *weighted rendezvous hashing* (highest random weight: each version
scores ``-ln(u) / weight`` with ``u`` a uniform hash of (key, version); the lowest score wins).
It is consistent: when weights change, a key moves only when it has to. Going from 90/10 to
80/20 moves the keys that now belong to the grown share and no others (about 10 %), where a
cumulative-interval split over a sorted version list would reshuffle every later interval once a
third version is added. Without a key the choice is weighted random: one ``random()`` and a
bisect over precomputed cumulative weights.

Everything per split is computed once, when the routing table is built; a request pays one
``random()`` (no key) or, per version, one 8-byte BLAKE2b of the key and one ``log`` (key).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Mapping
from hashlib import blake2b
from itertools import accumulate

_TWO_TO_53 = float(1 << 53)


def _uniform(key: bytes, person: bytes) -> float:
    """A uniform number in (0, 1] from (key, version): BLAKE2b personalised by the version
    (stable across processes, unlike ``hash``; one C call per version)."""
    digest = blake2b(key, digest_size=8, person=person).digest()
    return ((int.from_bytes(digest, "little") >> 11) + 1) / _TWO_TO_53


class TrafficSplit:
    """An immutable weighted choice among versions; build once per routing table."""

    __slots__ = ("_cumulative", "_persons", "_total", "_versions", "_weights")

    def __init__(self, weights: Mapping[int, float]) -> None:
        positive = sorted((v, float(w)) for v, w in weights.items() if w > 0)
        self._versions = tuple(v for v, _ in positive)
        self._weights = tuple(w for _, w in positive)
        self._cumulative = tuple(accumulate(self._weights))
        self._total = self._cumulative[-1] if positive else 0.0
        self._persons = tuple(v.to_bytes(8, "little") for v in self._versions)

    def __bool__(self) -> bool:
        return bool(self._versions)

    @property
    def versions(self) -> tuple[int, ...]:
        return self._versions

    def pick(self, route_key: str | None = None) -> int:
        """A version: sticky for ``route_key``, weighted random without one."""
        if len(self._versions) == 1:
            return self._versions[0]
        if route_key:
            return self.pick_keyed(route_key.encode())
        return self._versions[bisect_right(self._cumulative, random.random() * self._total)]

    def pick_keyed(self, key: bytes) -> int:
        best, best_score = self._versions[0], math.inf
        for version, weight, person in zip(
            self._versions, self._weights, self._persons, strict=True
        ):
            score = -math.log(_uniform(key, person)) / weight
            if score < best_score:
                best, best_score = version, score
        return best
