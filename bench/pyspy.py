"""Where the gateway's time goes: py-spy samples of ``tfsgate serve`` under load, summarised.

``py-spy record --format raw`` writes collapsed stacks, one line per distinct stack with its
sample count: ``thread (0x..);outer (file.py:12);...;leaf (file.py:40) 17``. Self time is charged
to the leaf frame (a C extension's time lands on the Python frame that called it). Only Python
threads are sampled (gRPC's C-core threads are not). With ``--nonblocking`` py-spy cannot tell a
thread waiting in a system call from one working, so samples whose leaf is a wait (the event
loop's ``select``, an idle executor or logger thread) are counted apart: shares are of the
Python work the gateway did, and ``waiting`` says how much of the time it had none. On uvloop
(every tfsgate role, tfsgate/lifecycle.py) the loop is C under the runner's frame: its epoll wait,
socket reads and callback dispatch are not told apart, and all count in ``waiting``.

The samples are of wall-clock time, not CPU: a thread preempted in a system call (a socket write
that wakes its reader on a shared core) is sampled in that call until it runs again, so the
writes' shares include time the gateway was not running. CPU per request is /proc's figure.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_PROJECT = ("gateway", "control_plane", "tfsgate")
# The process's entry frames, under every sample of the event loop's thread.
_ENTRY_POINTS = {
    "<module> (tfsgate/cli.py)",
    "main (tfsgate/cli.py)",
    "serve_main (tfsgate/cli.py)",
    "serve (tfsgate/server.py)",
}
# Leaf frames that are a thread blocked, not working: (function, file name).
_WAITS = {
    ("EpollSelector.select", "selectors.py"),
    ("_worker", "thread.py"),  # concurrent.futures' worker on its empty queue
    ("Condition.wait", "threading.py"),
    ("Event.wait", "threading.py"),
    ("Thread.run", "threading.py"),  # a C call below it (grpc's poller)
    ("Queue.get", "queue.py"),
    ("Runner.run", "runners.py"),  # uvloop's C loop: its waits and its own reads and dispatch
}
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Profile:
    samples: int  # working samples (waits left out)
    waiting: float  # share of all samples that were waits
    by_package: list[tuple[str, float]]  # (package, share of samples as leaf)
    by_function: list[tuple[str, float]]  # (function (file), self share)
    inclusive: list[tuple[str, float]]  # (project function, share of samples with it on stack)

    def as_dict(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "waiting": self.waiting,
            "by_package": self.by_package,
            "by_function": self.by_function,
            "inclusive": self.inclusive,
        }


def package_of(path: str) -> str:
    """``.../site-packages/grpc/aio/_call.py`` -> ``grpc``; project files by top directory."""
    parts = path.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            rest = parts[parts.index(marker) + 1 :]
            return rest[0].removesuffix(".py") if rest else "?"
    for project in _PROJECT:
        if project in parts:
            return project
    if "python3.11" in parts or "lib" in parts:
        name = parts[-2] if parts[-2] not in ("python3.11", "lib") else parts[-1]
        return f"stdlib:{name.removesuffix('.py')}"
    return parts[-1]


def _short(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1 :])
    for project in _PROJECT:
        if project in parts:
            return "/".join(parts[parts.index(project) :])
    return "/".join(parts[-2:])


def parse_collapsed(text: str, top: int = 15) -> Profile:
    leaf_packages: Counter[str] = Counter()
    leaf_functions: Counter[str] = Counter()
    on_stack: Counter[str] = Counter()
    total = waits = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [m for m in (_FRAME.match(f) for f in stack.split(";")) if m and m["line"]]
        if not frames:
            continue
        leaf = frames[-1]
        if (leaf["name"], leaf["file"].replace("\\", "/").rsplit("/", 1)[-1]) in _WAITS:
            waits += count
            continue
        total += count
        leaf_packages[package_of(leaf["file"])] += count
        leaf_functions[f"{leaf['name']} ({_short(leaf['file'])})"] += count
        # Inclusive time for our own code only: the event loop's frames are on every stack.
        ours = {m for m in frames if package_of(m["file"]) in _PROJECT}
        for name in {f"{m['name']} ({_short(m['file'])})" for m in ours} - _ENTRY_POINTS:
            on_stack[name] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(key, value / total) for key, value in counter.most_common(top)] if total else []

    waiting = waits / (total + waits) if total + waits else 0.0
    return Profile(total, waiting, shares(leaf_packages), shares(leaf_functions), shares(on_stack))


def binary() -> str:
    """The venv's py-spy (the bench extra) when the venv's bin is not on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


def record_command(pid: int, seconds: float, output: Path, rate: int = 250) -> list[str]:
    return [
        binary(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--nonblocking",
        "--full-filenames",
        "--output",
        str(output),
    ]


def start_record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` now; the caller runs the load, then waits on the process."""
    output.unlink(missing_ok=True)
    return subprocess.Popen(
        record_command(pid, seconds, output), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
