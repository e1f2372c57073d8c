"""Per-version sliding-window stats."""

from __future__ import annotations

from gateway.version_stats import VersionStats


def test_counts_errors_and_p99() -> None:
    stats = VersionStats()
    for _ in range(99):
        stats.record("m", 1, 0.001, error=False)
    stats.record("m", 1, 0.5, error=True)
    window = stats.window("m", 1, 60)
    assert (window.requests, window.errors) == (100, 1)
    assert window.p99_seconds is not None and 0.001 <= window.p99_seconds < 0.0012
    for _ in range(5):
        stats.record("m", 1, 0.5, error=False)
    slow = stats.window("m", 1, 60).p99_seconds
    assert slow is not None and 0.5 <= slow < 0.57
    assert stats.window("m", 2, 60).requests == 0
