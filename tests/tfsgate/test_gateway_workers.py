"""``tfsgate gateway --gateway_workers 2``: two processes on the same ports, each following the
routing feed; the kernel spreads connections over both, a scrape shows both workers' counts, a
worker killed outright is started again while the other serves, and SIGTERM to the role stops
every worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.procs import wait_ended
from tests.support.roles import (
    admin_answers,
    answering_workers,
    assert_workers_share_the_ports,
    predict_status,
    running,
    wait_for,
)
from tfsgate.gateway_workers import worker_argv

MODEL = "half_plus_two"


def test_worker_argv_replaces_the_workers_flag() -> None:
    given = ["--port=9000", "--gateway_workers", "4", "--gateway_workers=3", "--home=x"]
    assert worker_argv(given) == ["--port=9000", "--home=x", "--gateway_workers=1", "--reuse_port"]


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


@pytest.mark.triton
@pytest.mark.process
def test_two_gateway_workers_share_the_ports(half_plus_two: Path, tmp_path: Path) -> None:
    home = tmp_path / "serve"
    serve_args = [f"--model_name={MODEL}", f"--model_base_path={half_plus_two}"]
    serve_args.append(f"--model_repository={home / 'model_repository'}")
    with running("serve", home, serve_args) as serve:
        wait_for(serve, lambda: admin_answers(serve), "admin API")
        args = [f"--database_url=sqlite:///{home / 'catalog.db'}", "--gateway_workers=2"]
        with running("gateway", tmp_path / "gateway", args) as gateway:
            # Every worker has its routing table: new connections (spread by the kernel over
            # the workers) all answer.
            wait_for(
                gateway,
                lambda: all(predict_status(gateway) == 200 for _ in range(10)),
                "every worker serving",
            )
            workers = children(gateway.process.pid)
            assert len(workers) == 2
            assert_workers_share_the_ports(gateway, 2, connections=40)

            # A worker killed outright: new connections reach the other one (the kernel drops
            # the dead listener from the port's group) until the supervisor starts it again.
            os.kill(workers[0], signal.SIGKILL)
            assert not wait_ended([workers[0]], timeout=10)
            assert all(predict_status(gateway) == 200 for _ in range(10))
            wait_for(
                gateway,
                lambda: len(set(children(gateway.process.pid)) - set(workers)) == 1,
                "the killed worker started again",
                timeout=30,
            )
            assert workers[1] in children(gateway.process.pid)
            wait_for(
                gateway, lambda: len(answering_workers(gateway)) == 2, "both workers serving again"
            )
            assert "exited with status -9: starting it again" in gateway.log()
            workers = children(gateway.process.pid)
        assert gateway.process.returncode == 0
        assert not wait_ended(workers, timeout=0)
