"""``tfsgate gateway --gateway_workers N``: N gateway processes sharing the front doors' ports.

Each worker is a whole ``tfsgate gateway`` started with ``--reuse_port``: its own routing-feed
follower (so its own routing table, kept in step with the control plane like any gateway's), its
own Triton channel and event loop; the gRPC and REST ports are bound with SO_REUSEPORT and the
kernel spreads connections over the workers, so a host's cores can all serve. This process only
supervises: it checks the ports are free, starts the workers with ``PROMETHEUS_MULTIPROC_DIR``
set (any worker's scrape then shows every worker's counts: ``gateway/metrics.py``), forwards
SIGTERM/SIGINT, and when a worker dies stops the others and exits with its status, so the
orchestrator restarts the role as it would a single gateway.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import FrameType

from tfsgate.preflight import check_front_door_ports
from tfsgate.settings import ServeSettings
from tfsgate.startup import StartupError, report_failure

log = logging.getLogger("tfsgate")
_FLAG = "--gateway_workers"


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The role's flags for one worker: ``--gateway_workers`` dropped, ``--reuse_port`` added."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == _FLAG:
            skip = True  # "--gateway_workers N": the value is the next argument
        elif not arg.startswith(f"{_FLAG}="):
            out.append(arg)
    return [*out, "--gateway_workers=1", "--reuse_port"]


def supervise(settings: ServeSettings, argv: Sequence[str]) -> int:
    try:
        check_front_door_ports(settings)
    except StartupError as exc:
        return report_failure(exc)
    env = dict(os.environ)
    own_dir = None
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="tfsgate-gateway-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    command = [sys.executable, "-m", "tfsgate.cli", "gateway", *worker_argv(argv)]
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers = [subprocess.Popen(command, env=env) for _ in range(settings.gateway_workers)]
    log.info("gateway: %d workers (pids %s)", len(workers), [w.pid for w in workers])
    status = 0
    try:
        while not stopping:
            ended = [w for w in workers if w.poll() is not None]
            if ended:
                status = ended[0].returncode or 1
                log.error(
                    "gateway worker %d exited (%s): stopping the others", ended[0].pid, status
                )
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    return status
