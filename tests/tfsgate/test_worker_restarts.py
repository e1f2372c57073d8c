"""The delay before a gateway worker that exited starts again (both supervisors' policy)."""

from __future__ import annotations

import logging

import pytest

from tfsgate.worker_restarts import FIRST_S, MAX_S, STABLE_S, RestartDelay


def test_a_worker_failing_at_once_waits_longer_each_time_up_to_the_cap() -> None:
    delays = RestartDelay()
    assert [delays.after(0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert FIRST_S == 1 and MAX_S == 30


def test_a_worker_that_ran_a_while_starts_again_after_the_first_delay() -> None:
    delays = RestartDelay()
    for _ in range(4):
        delays.after(1)
    assert delays.after(STABLE_S + 1) == FIRST_S
    assert delays.after(1) == 2 * FIRST_S


def test_an_exit_is_logged_with_its_delay(caplog: pytest.LogCaptureFixture) -> None:
    delays = RestartDelay()
    with caplog.at_level(logging.ERROR, logger="tfsgate"):
        assert delays.exited(2, 4321, -9, 0.5) == FIRST_S
        assert delays.exited(2, 4322, 3, 0.5) == 2 * FIRST_S
    assert caplog.messages == [
        "gateway worker 2 (pid 4321) exited with status -9: starting it again in 1 s",
        "gateway worker 2 (pid 4322) exited with status 3: starting it again in 2 s",
    ]
