"""bench/exchange.py: a real exchange between two processes per placement, and what the report
and the missed-target notes make of canned figures."""

from __future__ import annotations

import copy
import os
import socket
import threading

from bench import exchange, report
from tests.bench.test_report import RESULTS


def test_every_placement_is_measured_in_processes_of_its_own() -> None:
    affinity = os.sched_getaffinity(0)
    rows = exchange.run(300)
    assert [row["placement"] for row in rows] == list(exchange.placements())
    assert ("two CPUs" in exchange.placements()) == (len(os.sched_getaffinity(0)) > 1)
    for row in rows:
        assert row["exchanges"] == 300
        assert row["round_trip_us"] > 0
        # Both sides sent, waited and received 300 times: some CPU each, and no exchange can
        # take less CPU than nothing or more than its whole round trip on both sides at once.
        assert 0 < row["cpu_us"] <= row["round_trip_us"] * 2
    assert os.sched_getaffinity(0) == affinity  # the pinning was the children's alone


def test_a_message_split_by_tcp_is_received_whole() -> None:
    left, right = socket.socketpair()
    message = b"y" * exchange.MESSAGE

    def send_in_two() -> None:
        left.sendall(message[:5])
        left.sendall(message[5:])

    sender = threading.Thread(target=send_in_two)
    sender.start()
    assert exchange._receive(right) == message
    sender.join()
    left.close()
    right.close()


ROWS = [
    {"placement": "scheduler", "exchanges": 5000, "round_trip_us": 110.0, "cpu_us": 45.0},
    {"placement": "one CPU", "exchanges": 5000, "round_trip_us": 21.0, "cpu_us": 10.0},
    {"placement": "two CPUs", "exchanges": 5000, "round_trip_us": 112.0, "cpu_us": 44.0},
]


def test_the_report_lists_each_placement() -> None:
    markdown = report.render({**RESULTS, "exchange": ROWS}, {}, "Benchmarks", baseline=None)
    assert "### Loopback exchanges between two processes" in markdown
    assert "| where the scheduler put them | 110 | 45 |" in markdown
    assert "| on one CPU | 21 | 10 |" in markdown
    assert "| on two CPUs | 112 | 44 |" in markdown
    assert "Loopback exchanges" not in report.render(RESULTS, {}, "Benchmarks", baseline=None)


def test_missed_one_client_notes_take_the_exchange_out() -> None:
    results = copy.deepcopy(RESULTS)
    results["exchange"] = ROWS
    rest_bare = {"kind": "rest-bare", "clients": 1, "server_cpu_us": 70.0, "rps": 5000.0}
    results["floors"] = [{**rest_bare, "p50_ms": 0.1, "p95_ms": 0.2, "p99_ms": 0.3, "errors": 0}]
    lines = report.render(results, {}, "Benchmarks", baseline=None).splitlines()
    cpu = next(line for line in lines if line.startswith("- REST at 1 client"))
    # 560 us in the sweep: the door's floor (70), one more exchange (45), the rest the gateway's.
    assert (
        "The call to Triton is one more loopback exchange for the gateway: on this host one"
        " exchange between two processes cost 45 us of CPU a side where the scheduler put them"
        " (10 us on one CPU, 44 us across two), which leaves about 445 us for the gateway's own"
        " decoding, routing, coalescing and encoding." in cpu
    )
    added = next(line for line in lines if line.startswith("- added p50 at 1 client, REST"))
    # tfsgate 1.40 ms against Triton's 0.80 ms: 0.60 ms added, of which 110 us is the exchange.
    assert (
        "its round trip between two processes took 110 us on this host where the scheduler put"
        " them (21 us on one CPU, 112 us across two), 18% of the added figure" in added
    )
    without = report.render(RESULTS, {}, "Benchmarks", baseline=None)
    assert "loopback exchange" not in without
