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


def test_a_large_json_body_leaves_the_parser_until_the_trim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """simdjson's parser keeps buffers sized by the largest body it read: one that read a body
    past REUSED_UP_TO is reused for the rest of the burst (a trim in between keeps it and comes
    back), then replaced at the first trim after it; a parser that only read small bodies is
    kept. (A large body of named inputs: one array of ``instances`` or ``inputs`` is read in
    pieces, which never grow the parser.)"""
    from gateway.codecs import json_numeric

    monkeypatch.setattr(heap, "DELAY", 0.05)
    monkeypatch.setattr(heap, "TRIMMER", heap.HeapTrimmer(lambda pad: 1))
    monkeypatch.setattr(json_numeric, "_grown", False)
    monkeypatch.setattr(json_numeric, "_large_since_trim", False)
    trimmer = heap.TRIMMER
    trimmer.before_trim(json_numeric._drop_grown_parser)
    row = ", ".join(["0.25"] * 60)
    small = f'{{"instances": [[{row}]]}}'.encode()
    large = ('{"inputs": {"x": [' + ", ".join([f"[{row}]"] * 4000) + "]}}").encode()
    assert len(large) > json_numeric.REUSED_UP_TO

    async def main() -> None:
        first = json_numeric._parser
        assert json_numeric.parse_predict(small) is not None
        trimmer.moved(1 << 20)
        await asyncio.sleep(0.2)
        assert json_numeric._parser is first  # small bodies only: kept
        body = json_numeric.parse_predict(large)
        assert body is not None and body.arrays["x"].shape == (4000, 60)
        assert json_numeric.parse_predict(large) is not None
        assert json_numeric._parser is first  # reused within the burst
        trimmer._run()  # a trim: the burst may go on, so the parser stays and a trim is due
        assert json_numeric._parser is first and trimmer._pending is not None
        await asyncio.sleep(0.2)  # that trim: no large body since
        assert json_numeric._parser is not first
        assert trimmer.trims == 3 and trimmer._pending is None
        assert json_numeric.parse_predict(small) is not None

    asyncio.run(main())
