"""The benchmark's main serve of half_plus_two alone, for tests of ``bench/``: the tool the test
loads it with, checked first (``bench/setup.sh`` installs it; ``.ci/run`` does)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.bodies import Bodies, Case, write_bodies
from bench.engine import config_file
from bench.measure import HALF_PLUS_TWO_X, Bench, Plan
from bench.procs import Serve, stop


@contextmanager
def half_plus_two_bench(
    model: Path, work: Path, tool: str
) -> Iterator[tuple[Bench, Serve, Case, Bodies]]:
    """A quick-plan ``Bench`` with its serve of ``model`` (version 123), stopped afterwards."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (bash bench/setup.sh installs it; .ci/run does)")
    bench = Bench(Plan.make(quick=True), work)
    config = config_file(work / "models.config", {"half_plus_two": model})
    serve = bench.start_main(config, others=())
    try:
        case = Case.of("half_plus_two", 123, "x", "y", HALF_PLUS_TWO_X)
        yield bench, serve, case, write_bodies(case, bench.bodies_dir)
    finally:
        stop(serve.process)
