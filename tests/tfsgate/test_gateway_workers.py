"""``tfsgate gateway --gateway_workers 2``: two processes on the same ports, each following the
routing feed; the kernel spreads connections over both, a scrape shows both workers' counts, and
SIGTERM to the role stops every worker."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.metrics import FLUSH_SECONDS, METRICS_PATH
from tests.support.metrics_pages import predict_requests, scrape
from tests.support.procs import wait_ended
from tests.support.roles import admin_answers, health_status, predict_status, running, wait_for
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
            url = f"{gateway.rest_url}/v1/models/{MODEL}:predict"
            prefixes = set()
            for _ in range(40):  # a new connection each: the kernel picks a worker per connection
                answer = httpx.post(url, json={"instances": [1.0, 2.0]}, timeout=10)
                assert answer.json() == {"predictions": [2.5, 3.0]}
                prefixes.add(answer.headers["x-request-id"].split("-")[0])
            assert len(prefixes) == 2, "one worker answered every connection"
            assert health_status(gateway.grpc_target) == "SERVING"
            # Both workers' counts, whichever answers the scrape: the other worker's tallies
            # reach its file within gateway.metrics.FLUSH_SECONDS (docs/metrics.md).
            wait_for(
                gateway,
                lambda: predict_requests(scrape(f"{gateway.rest_url}{METRICS_PATH}").text) >= 40,
                "both workers' requests on the summed page",
                timeout=3 * FLUSH_SECONDS,
            )
        assert gateway.process.returncode == 0
        assert not wait_ended(workers, timeout=0)
