"""A role's run: its loop, its exit status, start-up failures as TF Serving reports them."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from tfsgate import lifecycle
from tfsgate.core.status import Code
from tfsgate.startup import StartupError


def test_a_role_runs_on_uvloop_and_returns_its_status() -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        seen.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return 3

    assert lifecycle.run(main) == 3
    assert isinstance(seen[0], uvloop.Loop)
    assert seen[0].is_closed()


def test_a_start_up_failure_is_tf_servings_line_and_255(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> int:
        raise StartupError("no such model", Code.NOT_FOUND)

    assert lifecycle.run(main) == 255
    assert capsys.readouterr().out == "Failed to start server. Error: NOT_FOUND: no such model\n"
