"""The recording points' tallies: applied in bulk they leave the metrics as one ``observe`` or
``inc`` per request would, before any read, within a second on a running loop, and at exit."""

from __future__ import annotations

import asyncio
import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from gateway import metrics
from tfsgate.core.shared_metrics import REQUEST_SECONDS
from tfsgate.core.status import Code


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    (family,) = histogram.collect()
    return {
        (s.name, s.labels.get("le", "")): s.value for s in family.samples if "created" not in s.name
    }


def test_a_tally_applied_in_bulk_equals_one_observe_each() -> None:
    rng = random.Random(3)
    values = [rng.choice([0.0, 0.001, 0.002, 10.0, 11.0]) for _ in range(50)]
    values += [rng.expovariate(200.0) for _ in range(500)]
    one_by_one = Histogram("h", "", ["k"], buckets=REQUEST_SECONDS, registry=CollectorRegistry())
    bulk = Histogram("h", "", ["k"], buckets=REQUEST_SECONDS, registry=CollectorRegistry())
    tally = metrics._Tally(bulk.labels("a"))
    for value in values:
        one_by_one.labels("a").observe(value)
        tally.add(value)
    tally.apply()
    expected, got = _samples(one_by_one), _samples(bulk)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert tally.count == 0 and not any(tally.buckets)


def _requests(labels: dict[str, str]) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("tfsgate_requests_total", labels) or 0.0


def test_a_read_sees_every_request_and_a_running_loop_flushes_within_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The version and label a request was routed to (``routed`` leaves them in a context
    # variable, and a test before this one may have left its own in the main context).
    routed = metrics.ROUTED.set(("", ""))
    labels = {"protocol": "rest", "method": "tally", "model": "", "version": "", "label": ""}
    before = _requests({**labels, "code": "OK"})
    metrics.observe("rest", "tally", "", Code.OK, 0.001)
    assert _requests({**labels, "code": "OK"}) == before + 1  # the read flushed first

    monkeypatch.setattr(metrics, "FLUSH_SECONDS", 0.05)

    async def main() -> None:
        metrics.flush()
        metrics.observe("rest", "tally", "", Code.OK, 0.001)
        metrics.routed("tally-model", 1, "", "latest")
        assert metrics._flush_handle is not None
        counted, _ = metrics._request_children[("rest", "tally", "", "", "", Code.OK)]
        assert counted.count == 1
        await asyncio.sleep(0.2)
        assert counted.count == 0 and metrics._flush_handle is None  # applied by the timer

    asyncio.run(main())  # its task runs in a copy of this context: routed's set stays there
    assert _requests({**labels, "code": "OK"}) == before + 2
    metrics.ROUTED.reset(routed)
