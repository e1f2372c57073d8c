"""The supervisor of ``tfsgate gateway --gateway_workers N``, on the standard library alone.

``gateway_workers.supervise`` checks the flags and ports with the whole CLI loaded, then execs
``python -m tfsgate.worker_supervisor`` in the same process (same pid, so an orchestrator's signals
still reach it): a process that only starts, watches and stops workers has no use for the ~100 MB
of grpc, numpy, pydantic and SQLAlchemy the CLI imported (measured: 108 MB before, see
docs/performance.md). It starts N copies of the worker command, forwards SIGTERM/SIGINT to them, and
when one exits stops the others and exits with its status (1 if it exited 0 unasked), so the
orchestrator restarts the role as it would a single gateway. ``--remove`` names a directory to
delete at the end (the Prometheus multiprocess directory it made for the workers).

``python -m tfsgate.worker_supervisor --count N [--remove DIR] [--log_level L] -- COMMAND...``
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from tfsgate.core.defaults import LOG_FORMAT  # standard library only, like this module

log = logging.getLogger("tfsgate")
_STOP_GRACE_S = 30.0  # each worker's drain bound after SIGTERM; then SIGKILL


def supervise(count: int, command: Sequence[str]) -> int:
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: list[subprocess.Popen[bytes]] = []
    status = 0
    try:
        for _ in range(count):  # one by one: a failed start still stops those already running
            workers.append(subprocess.Popen(list(command)))
        log.info("gateway: %d workers (pids %s)", len(workers), [w.pid for w in workers])
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
                worker.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfsgate.worker_supervisor")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--remove", default="")
    parser.add_argument("--log_level", default="info")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.count < 1 or not command:
        parser.error("--count >= 1 and a worker command after -- are required")
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    try:
        return supervise(args.count, command)
    finally:
        if args.remove:
            shutil.rmtree(args.remove, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
