"""The supervisor of ``tfsgate gateway --gateway_workers N``, on the standard library alone.

``gateway_workers.supervise`` checks the flags and ports with the whole CLI loaded, then execs
``python -m tfsgate.worker_supervisor`` in the same process (same pid, so an orchestrator's signals
still reach it): a process that only starts, watches and stops workers has no use for the ~100 MB
of grpc, numpy, pydantic and SQLAlchemy the CLI imported (measured: 108 MB before, see
docs/performance.md). It starts N copies of the worker command and forwards SIGTERM/SIGINT to them
(the kernel sends them SIGTERM should the supervisor itself be killed), and sleeps meanwhile.
A worker that exits unasked (a crash, an OOM kill) is started again as ``tfsgate serve``'s are
(tfsgate/worker_restarts.py) while the others keep serving, and its live gauges are dropped from
the Prometheus multiprocess directory. A worker that fails to start (status 255: flags, ports)
would fail again: then the supervisor stops the others and exits with that status, so the
orchestrator sees the failed start. ``--remove`` names a directory to delete at the end (the
Prometheus multiprocess directory it made for the workers).

``python -m tfsgate.worker_supervisor --count N [--remove DIR] [--log_level L] -- COMMAND...``
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

# The standard library only, like this module.
from tfsgate.core.defaults import FAILED_START_EXIT, LOG_FORMAT
from tfsgate.core.spawning import dying_with_parent
from tfsgate.worker_restarts import RestartDelay

log = logging.getLogger("tfsgate")
_STOP_GRACE_S = 30.0  # each worker's drain bound after SIGTERM; then SIGKILL


def supervise(count: int, command: Sequence[str]) -> int:
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGCHLD:
            stopping.append(signum)

    # The loop sleeps until something happens: every signal handled here (SIGCHLD when a worker
    # exits, SIGTERM/SIGINT) writes a byte to this pipe (``signal.set_wakeup_fd``), which wakes
    # its ``select``; a signal that arrives between a check and the ``select`` is still in the
    # pipe then. No polling while all is well.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    previous_wakeup = signal.set_wakeup_fd(wake_write)
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    workers: list[subprocess.Popen[bytes]] = []
    status = 0
    try:
        for _ in range(count):  # one by one: a failed start still stops those already running
            workers.append(_spawn(command))
        log.info("gateway: %d workers (pids %s)", len(workers), [w.pid for w in workers])
        status = _keep(workers, command, stopping, wake_read)
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
        signal.set_wakeup_fd(previous_wakeup)
        os.close(wake_read)
        os.close(wake_write)
    return status


def _keep(
    workers: list[subprocess.Popen[bytes]],
    command: Sequence[str],
    stopping: list[int],
    wake: int,
) -> int:
    """Until a signal: each worker that exits is started again after its delay; 0, or the status
    of a worker that failed to start. Sleeps on ``wake`` until a signal or the next restart."""
    delays = [RestartDelay() for _ in workers]
    started = [time.monotonic()] * len(workers)
    due: list[float | None] = [None] * len(workers)  # when an exited worker starts again
    while not stopping:
        now = time.monotonic()
        for index, worker in enumerate(workers):
            when = due[index]
            if when is not None:
                if now < when:
                    continue
                try:
                    workers[index] = _spawn(command)
                except OSError as exc:  # no memory or descriptors for now: later, as a failure
                    due[index] = now + delays[index].after(0.0)
                    log.error("gateway worker %d could not start again: %s", index, exc)
                    continue
                started[index], due[index] = now, None
                log.info("gateway worker %d started again (pid %d)", index, workers[index].pid)
                continue
            status = worker.poll()
            if status is None:
                continue
            _drop_live_gauges(worker.pid)
            if status == FAILED_START_EXIT:
                log.error(
                    "gateway worker %d (pid %d) failed to start: stopping the others",
                    index,
                    worker.pid,
                )
                return status
            due[index] = now + delays[index].exited(index, worker.pid, status, now - started[index])
        pending = [when for when in due if when is not None]
        timeout = max(0.0, min(pending) - time.monotonic()) if pending else None
        if not stopping:
            select.select([wake], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(wake, 512):
                pass
    return 0


def _spawn(command: Sequence[str]) -> subprocess.Popen[bytes]:
    """A worker that is sent SIGTERM (and drains) if this supervisor dies without stopping it: a
    SIGKILLed or OOM-killed supervisor otherwise leaves its workers holding the ports, serving a
    role its orchestrator sees as ended and will start again beside them."""
    return subprocess.Popen(dying_with_parent(command, "TERM"))


def _drop_live_gauges(pid: int) -> None:
    """A dead worker's ``live*`` gauges leave the summed page (prometheus_client's rule for
    multiprocess mode: the supervisor marks its dead processes). Imported here, once a worker has
    died: the module costs the supervisor about 12 MB."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)


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
