"""``tfsgate gateway --gateway_workers N``: N gateway processes sharing the front doors' ports.

Each worker is a whole ``tfsgate gateway`` started with ``--reuse_port``: its own routing-feed
follower (so its own routing table, kept in step with the control plane like any gateway's), its
own Triton channel and event loop; the gRPC and REST ports are bound with SO_REUSEPORT and the
kernel spreads connections over the workers, so a host's cores can all serve. This process only
supervises: it checks the ports are free, sets ``PROMETHEUS_MULTIPROC_DIR`` for the workers (any
worker's scrape then shows every worker's counts: ``gateway/metrics.py``) and execs
``tfsgate.worker_supervisor``, which starts them, forwards SIGTERM/SIGINT, and starts a worker
that dies again while the others serve (one that fails to start ends the role with its status).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Sequence

from tfsgate.preflight import check_front_door_ports
from tfsgate.settings import ServeSettings
from tfsgate.startup import StartupError, report_failure

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
    """Check the ports with the flags parsed, then become ``tfsgate.worker_supervisor`` (exec:
    same pid, none of this process's imports) to run the workers; returns only on a failed check.
    """
    try:
        check_front_door_ports(settings)
    except StartupError as exc:
        return report_failure(exc)
    env = dict(os.environ)
    supervisor = [sys.executable, "-m", "tfsgate.worker_supervisor"]
    supervisor += [f"--count={settings.gateway_workers}", f"--log_level={settings.log_level}"]
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tfsgate-gateway-metrics-")
        supervisor.append(f"--remove={env['PROMETHEUS_MULTIPROC_DIR']}")
    worker = [sys.executable, "-m", "tfsgate.cli", "gateway", *worker_argv(argv)]
    logging.shutdown()  # flush before the exec replaces this process
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [*supervisor, "--", *worker], env)
