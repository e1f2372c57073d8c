"""CallDepth: the choice between one and two Triton calls in flight per lane (pure logic)."""

from __future__ import annotations

from gateway.call_depth import CallDepth


def epoch(depth: CallDepth, seconds: float, requests: int = 4) -> None:
    for _ in range(requests):
        depth.record(100.0, 100.0 + seconds)  # ended at the same time: no epoch closes by time


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


def test_an_epoch_of_slow_requests_closes_after_its_seconds() -> None:
    """Requests of a quarter second: an epoch closes after half a second, not 512 requests, so a
    lane whose traffic turned slow looks at its depth again within seconds."""
    depth = CallDepth(epoch=512, seconds=0.5, probe_every=2)
    clock = 0.0
    for _ in range(4):  # two epochs of two requests each
        depth.record(clock, clock + 0.25)
        clock += 0.25
    assert (depth.calls, depth.chosen) == (2, 1)  # the next epoch is the probe


def test_a_depth_of_at_most_one_never_probes_two() -> None:
    depth = CallDepth(epoch=4, probe_every=1, most=1)
    for _ in range(50):
        epoch(depth, 0.010)
        assert (depth.calls, depth.chosen) == (1, 1)
