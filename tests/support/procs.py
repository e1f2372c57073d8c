"""Find processes by their command line (Linux /proc): orphan checks, Triton's python-backend
stubs and their memory."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

STUB = "triton_python_backend_stub"


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                stack += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def pids_mentioning(text: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in cmdline and int(entry.name) != os.getpid():
                found.add(int(entry.name))
    return found


def wait_gone(text: str, timeout: float = 30.0) -> set[int]:
    """Wait until no process mentions ``text``; return the survivors (empty on success)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = {pid for pid in pids_mentioning(text) if not _zombie(pid)}
        if not alive:
            return set()
        time.sleep(0.2)
    return alive


def wait_ended(pids: list[int], timeout: float = 30.0) -> set[int]:
    """Wait until none of ``pids`` runs (gone or a zombie); return the survivors."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {pid for pid in pids if not _zombie(pid)}
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return True


def open_sockets(pid: int) -> int:
    """How many sockets ``pid`` holds open (listeners and connections); 0 once it is gone."""
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    with contextlib.suppress(OSError):
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):
                count += os.readlink(fd).startswith("socket:")
    return count


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    cmdline: str
    rss: int  # bytes


def processes() -> list[Proc]:
    """Every process we can read, from /proc (no psutil in the venv)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        rss = next((int(line.split()[1]) * 1024 for line in status.splitlines()
                    if line.startswith("VmRSS:")), 0)  # fmt: skip
        found.append(Proc(int(entry.name), int(fields[1]), int(fields[2]), cmdline, rss))
    return found


def stubs_of(repository: Path) -> list[Proc]:
    return [p for p in processes() if STUB in p.cmdline and str(repository) in p.cmdline]
