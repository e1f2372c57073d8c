"""Children spawned to die with their parent, without a pre-exec hook (tfsgate/core/spawning.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import grpc
import pytest

from tests.support.procs import wait_ended
from tfsgate.core import spawning
from tfsgate.core.spawning import dying_with_parent


def test_without_setpriv_the_command_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spawning.shutil, "which", lambda name: None)
    assert dying_with_parent(["tritonserver", "--x"], "KILL") == ["tritonserver", "--x"]


def test_spawns_beside_grpc_threads_all_start() -> None:
    """With a grpc.aio server and channel running in this process (its event engine's threads),
    a spawn with a pre-exec hook ran grpcio's fork handlers and 17 of 2,000 such children died
    of SIGABRT before exec; spawned as the Triton supervisor and the bench now spawn, none does."""

    async def spawn_beside_grpc(count: int) -> list[int]:
        server = grpc.aio.server()
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        await channel.channel_ready()
        codes = []
        try:
            for _ in range(count):
                child = subprocess.Popen(
                    dying_with_parent(["/bin/true"], "KILL"),
                    stderr=subprocess.DEVNULL,
                    process_group=0,
                )
                codes.append(await asyncio.to_thread(child.wait))
        finally:
            await channel.close()
            await server.stop(None)
        return codes

    codes = asyncio.run(spawn_beside_grpc(600))
    assert codes == [0] * 600


@pytest.mark.process
def test_the_child_dies_with_the_process_that_spawned_it() -> None:
    """A parent killed outright (SIGKILL: no shutdown code runs) takes the child with it."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import subprocess, sys, time
                from tfsgate.core.spawning import dying_with_parent
                child = subprocess.Popen(dying_with_parent(["sleep", "120"], "KILL"))
                print(child.pid, flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        time.sleep(0.2)
        assert wait_ended([child], 0) == {child}, "the child runs while its parent does"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert not wait_ended([child], 10), "the child outlived its parent"
    finally:
        for pid in (child, parent.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
