"""The heap trimmer: one trim after a burst of large requests, none for small ones."""

from __future__ import annotations

import asyncio

import pytest

from gateway import heap


def test_small_requests_never_trim() -> None:
    calls: list[int] = []

    async def main() -> None:
        trimmer = heap.HeapTrimmer(lambda pad: calls.append(pad) or 1)
        for _ in range(100):
            trimmer.moved(heap.LARGE_BYTES - 1)
        await asyncio.sleep(heap.DELAY * 2)

    asyncio.run(main())
    assert calls == []


def test_a_burst_of_large_requests_trims_once_after_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heap, "DELAY", 0.05)
    calls: list[int] = []

    async def main() -> heap.HeapTrimmer:
        trimmer = heap.HeapTrimmer(lambda pad: calls.append(pad) or 1)
        for _ in range(10):
            trimmer.moved(1 << 20)
        await asyncio.sleep(0.2)
        assert calls == [0]
        trimmer.moved(1 << 20)  # a later one gets its own
        await asyncio.sleep(0.2)
        return trimmer

    trimmer = asyncio.run(main())
    assert calls == [0, 0] and trimmer.trims == 2


def test_glibc_malloc_trim_is_found_and_runs() -> None:
    trim = heap._malloc_trim()
    assert trim is not None  # this machine's C library is glibc
    assert trim(0) in (0, 1)  # 1: memory was released, 0: none to release
