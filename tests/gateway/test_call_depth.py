"""CallDepth: the choice between one and two Triton calls in flight per lane (pure logic)."""

from __future__ import annotations

from gateway.call_depth import CallDepth


def epoch(depth: CallDepth, seconds: float, requests: int = 4) -> None:
    for _ in range(requests):
        depth.record(seconds)


def test_a_lane_starts_with_one_call_and_probes_two_after_the_set_epochs() -> None:
    depth = CallDepth(epoch=4, probe_every=3)
    assert (depth.calls, depth.chosen) == (1, 1)
    epoch(depth, 0.010)
    epoch(depth, 0.010)
    assert depth.calls == 1
    epoch(depth, 0.010)
    assert (depth.calls, depth.chosen) == (2, 1)  # the probe epoch


def test_a_probe_that_answers_sooner_is_kept() -> None:
    depth = CallDepth(epoch=4, probe_every=2)
    epoch(depth, 0.010)
    epoch(depth, 0.010)
    epoch(depth, 0.008)  # the probe at two: 20 % sooner
    assert (depth.calls, depth.chosen) == (2, 2)
    epoch(depth, 0.008)
    epoch(depth, 0.008)
    assert depth.calls == 1  # now one is the probe
    epoch(depth, 0.009)  # slower than two: two stays
    assert (depth.calls, depth.chosen) == (2, 2)


def test_a_probe_within_the_margin_or_slower_is_not_kept() -> None:
    depth = CallDepth(epoch=4, probe_every=1)
    epoch(depth, 0.010)
    epoch(depth, 0.0097)  # 3 % sooner: noise
    assert (depth.calls, depth.chosen) == (1, 1)
    epoch(depth, 0.010)
    epoch(depth, 0.012)
    assert (depth.calls, depth.chosen) == (1, 1)


def test_the_mean_is_per_epoch() -> None:
    """An epoch's mean counts only its own requests: a slow epoch before does not weigh on it."""
    depth = CallDepth(epoch=2, probe_every=2)
    epoch(depth, 1.0, requests=2)
    epoch(depth, 0.010, requests=2)
    epoch(depth, 0.009, requests=2)  # the probe: 10 % sooner than the epoch before it
    assert depth.chosen == 2
