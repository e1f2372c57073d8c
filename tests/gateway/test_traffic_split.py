"""Weighted and sticky choice among versions."""

from __future__ import annotations

import random

import pytest

from gateway.traffic_split import TrafficSplit

KEYS = [f"user-{i}" for i in range(20_000)]


def test_weighted_random_without_a_key_follows_the_weights() -> None:
    random.seed(7)
    split = TrafficSplit({1: 90, 2: 10})
    picks = [split.pick() for _ in range(20_000)]
    assert abs(picks.count(2) / len(picks) - 0.10) < 0.01


def test_keys_spread_by_weight_and_stay_put() -> None:
    split = TrafficSplit({1: 90, 2: 10})
    first = [split.pick(k) for k in KEYS]
    assert abs(first.count(2) / len(KEYS) - 0.10) < 0.01
    assert [split.pick(k) for k in KEYS] == first
    assert [TrafficSplit({2: 10, 1: 90}).pick(k) for k in KEYS] == first  # order-free


def test_changing_90_10_to_80_20_moves_only_the_grown_share() -> None:
    before = TrafficSplit({1: 90, 2: 10})
    after = TrafficSplit({1: 80, 2: 20})
    moved = [k for k in KEYS if before.pick(k) != after.pick(k)]
    assert abs(len(moved) / len(KEYS) - 0.10) < 0.01
    assert all(before.pick(k) == 1 and after.pick(k) == 2 for k in moved)


def test_adding_a_third_version_takes_only_its_own_share() -> None:
    before = TrafficSplit({1: 50, 2: 50})
    after = TrafficSplit({1: 50, 2: 50, 3: 25})  # 3 gets 20 %
    moved = [k for k in KEYS if before.pick(k) != after.pick(k)]
    assert all(after.pick(k) == 3 for k in moved)
    assert abs(len(moved) / len(KEYS) - 0.20) < 0.015


@pytest.mark.parametrize("weights", [{}, {1: 0}, {1: 0.0, 2: 0}])
def test_no_positive_weight_is_an_empty_split(weights: dict[int, float]) -> None:
    assert not TrafficSplit(weights)


def test_zero_weight_never_chosen() -> None:
    split = TrafficSplit({1: 100, 2: 0})
    assert {split.pick(k) for k in KEYS[:2000]} == {1}
    assert {split.pick() for _ in range(2000)} == {1}
