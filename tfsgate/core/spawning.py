"""Children that die with the process that started them, spawned without a pre-exec hook.

The parent-death signal (``PR_SET_PDEATHSIG``) must be set in the child. Set by a ``preexec_fn``
it makes ``subprocess`` fork the whole process instead of vforking, and grpcio's C core, built
with fork support, runs its fork handlers: in the child they start its event engine's poller
again, ``subprocess`` then closes the child's descriptors before exec, and a poller whose epoll
descriptor is gone aborts ("Epoll1Poller ... epoll_wait error: Bad file descriptor"). Measured:
17 of 2,000 such spawns of ``/bin/true`` from a process with a grpc.aio server died of SIGABRT,
none of 2,000 vforked; in CI a test's tritonserver "exited with -6" before it ran. So the signal
is set by util-linux's ``setpriv``, which then execs the command (same pid), and ``subprocess``
can vfork (no ``preexec_fn``; its ``process_group`` replaces ``setpgrp``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence


def dying_with_parent(command: Sequence[str], signal_name: str) -> list[str]:
    """``command``, made to receive ``signal_name`` (``KILL``, ``TERM``) when the thread that
    spawns it ends; as it is where ``setpriv`` is missing (util-linux: on every Debian, Ubuntu
    and RHEL image), where the child is then only stopped by an orderly shutdown."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(command)
    return [setpriv, f"--pdeathsig={signal_name}", "--", *command]
