"""Gateway observations in the catalog (SQLite and PostgreSQL): several gateways' reports merge
into one window per version and one shadow summary per version pair; reports are idempotent."""

from __future__ import annotations

import time

import pytest

from control_plane.catalog import CatalogStore
from tfsgate.core.observations import (
    Comparison,
    ShadowReport,
    ShadowSummary,
    VersionSecond,
    bucket_of,
)


def second(
    model: str, version: int, at: int, requests: int, errors: int, latency: float
) -> VersionSecond:
    return VersionSecond(model, version, at, requests, errors, {bucket_of(latency): requests})


def test_windows_sum_every_gateway(store: CatalogStore) -> None:
    observations = store.observations
    now = int(time.time())
    observations.report("gw-a", [second("m", 1, now - 2, 90, 0, 0.001)], [])
    observations.report(
        "gw-b",
        [second("m", 1, now - 2, 10, 2, 0.2), second("m", 2, now - 1, 5, 5, 0.01)],
        [],
    )
    observations.report("gw-a", [second("m", 1, now - 3000, 100, 100, 5.0)], [])  # too old
    window = observations.window("m", 1, 60)
    assert (window.requests, window.errors) == (100, 2)
    # The slowest 10 % came from the other gateway: the merged p99 is theirs.
    assert window.p99_seconds is not None and 0.2 <= window.p99_seconds < 0.23
    assert observations.window("m", 2, 60).errors == 5
    assert observations.window("m", 3, 60).requests == 0
    assert observations.window("other", 1, 60).p99_seconds is None


def test_a_second_reported_again_keeps_the_latest_figures(store: CatalogStore) -> None:
    now = int(time.time())
    store.observations.report("gw", [second("m", 1, now - 1, 3, 0, 0.001)], [])
    store.observations.report("gw", [second("m", 1, now - 1, 4, 1, 0.001)], [])
    window = store.observations.window("m", 1, 60)
    assert (window.requests, window.errors) == (4, 1)


def _summary(requests: int, max_diff: float, beyond: int) -> ShadowSummary:
    summary = ShadowSummary()
    for _ in range(requests):
        summary.add(Comparison(2, max_diff, beyond, 0, 0), 0.001, 0.003)
    return summary


def test_shadow_totals_merge_over_gateways(store: CatalogStore) -> None:
    observations = store.observations
    observations.report("gw-a", [], [ShadowReport("m", 1, 2, _summary(3, 0.5, 0))])
    failing = _summary(1, 1.0, 2)
    failing.add_error("UNAVAILABLE")
    observations.report("gw-b", [], [ShadowReport("m", 1, 2, failing)])
    # Totals are running sums: a later report replaces the gateway's earlier one.
    observations.report("gw-a", [], [ShadowReport("m", 1, 2, _summary(4, 0.5, 0))])
    observations.report("gw-a", [], [ShadowReport("other", 1, 2, _summary(9, 9.0, 2))])
    (merged,) = observations.shadow_summary("m")
    assert (merged["primary_version"], merged["shadow_version"]) == (1, 2)
    assert merged["requests"] == 6 and merged["errors"] == 1
    assert merged["error_codes"] == {"UNAVAILABLE": 1}
    assert merged["max_abs_diff"] == 1.0
    assert merged["rows"] == 10 and merged["share_rows_beyond_tolerance"] == pytest.approx(0.2)
    assert merged["mean_shadow_latency_seconds"] == pytest.approx(0.003)
    assert observations.shadow_summary("none") == []
