"""Background clients for end-to-end tests: threads, each with its own HTTP client, calling one
function in a loop while the test changes the server under them (a swap, a rollout, a Triton
killed), counting what succeeded and keeping every failure."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

# call(client, thread index): returning counts as ok; raising is a failure (kept, the loop goes on).
Call = Callable[[httpx.Client, int], None]


class Failed(Exception):
    """An answer that is not the one wanted; its message is what ``failures`` keeps."""


class Load:
    """``threads`` threads calling ``call`` until the ``with`` block ends."""

    def __init__(self, call: Call, threads: int = 1, timeout: float = 30.0) -> None:
        self.ok = 0
        self.failures: list[str] = []
        self._call = call
        self._timeout = timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, index: int) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stop.is_set():
                try:
                    self._call(client, index)
                    failure = ""
                except Failed as exc:
                    failure = str(exc)
                except Exception as exc:  # noqa: BLE001 - any error is a failed request to report
                    failure = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if failure:
                        self.failures.append(failure)
                    else:
                        self.ok += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
