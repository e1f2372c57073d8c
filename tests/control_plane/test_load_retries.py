"""The load-retry book: TF Serving's max_num_load_retries / load_retry_interval_micros."""

from __future__ import annotations

from control_plane.reconciler.load_retries import LoadRetries


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_retries_then_fails_with_the_last_reason() -> None:
    clock = Clock()
    book = LoadRetries(max_retries=2, interval_seconds=60, clock=clock)
    key = ("m", 3)
    assert book.failed(key, "boom 1") is None
    assert book.waiting(key) and not book.due(key) and book.pending("m")
    assert "retry 1 of 2 in 60 s: boom 1" in book.waiting_reason(key, "boom 1")
    clock.now += 60
    assert book.due(key)
    assert book.failed(key, "boom 2") is None
    clock.now += 60
    final = book.failed(key, "boom 3")
    assert final == "boom 3 (failed 3 times, --max_num_load_retries=2)"
    assert not book.pending()


def test_no_retries_fails_at_once() -> None:
    book = LoadRetries(max_retries=0, interval_seconds=60)
    assert book.failed(("m", 1), "boom") == "boom"
    assert not book.pending()


def test_success_and_unwanted_versions_are_forgotten() -> None:
    book = LoadRetries(max_retries=5, interval_seconds=-1)  # negative: no wait, as in TF
    book.failed(("m", 1), "x")
    book.failed(("m", 2), "x")
    book.failed(("n", 1), "x")
    assert book.due(("m", 1))
    book.succeeded(("m", 1))
    book.forget(lambda key: key[0] == "m")
    assert book.pending("m") and not book.pending("n")
