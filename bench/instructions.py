"""Instructions per request: the gateway's own work, counted by valgrind's callgrind, which no
host's minute changes.

Why beside the CPU rows: microseconds per request follow the VM. Four ``make bench`` runs of one
request path within 50 minutes read 219-269 us at one REST client, and a VM of another CPU model
read 343 (docs/performance.md, thirty-third pass). callgrind counts the instructions the process
executes, not time: the same code, inputs and libraries give the same count to within the
event loop's idle timers, whatever else the machine runs. So this row moves only when the code
(or a library) changes, and says by how much.

How: ``tfsgate serve`` runs under ``valgrind --tool=callgrind --instr-atstart=no
--separate-threads=yes`` (start-up at valgrind's uninstrumented speed; Triton, its child, is not
traced). ``callgrind_control`` switches counting on, zeroes the counters, and dumps them after
each window: an idle one (what the loop's own timers cost a second), N requests from one client
per protocol, another idle one. Per request: the event loop's thread (thread 1: the door, the
codecs, the upstream call) less its idle rate over the window.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_SUMMARY = re.compile(r"^(?:summary|totals): (\d+)", re.MULTILINE)
_THREAD = re.compile(r"^thread: (\d+)", re.MULTILINE)
_TRIGGER = re.compile(r"^desc: Trigger: (.*)$", re.MULTILINE)
MAIN_THREAD = 1  # callgrind numbers threads in creation order: the loop's is the first
_DUMP_SETTLE_S = 0.5
_DUMP_WAIT_S = 30.0


def unavailable() -> str | None:
    """Why callgrind cannot count here, or None when it can."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"no `{tool}` on PATH (Debian's valgrind)"
    return None


def wrapper(out_dir: Path) -> list[str]:
    """The command prefix that runs a process under callgrind, counting nothing until told."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        "--trace-children=no",
        f"--callgrind-out-file={out_dir}/callgrind.%p.out",
    ]


def parse_dump(text: str) -> tuple[str, int, int]:
    """One callgrind dump file: (its trigger, its thread, its instruction total)."""
    trigger = _TRIGGER.search(text)
    thread = _THREAD.search(text)
    total = _SUMMARY.search(text)
    return (
        trigger.group(1).strip() if trigger else "",
        int(thread.group(1)) if thread else MAIN_THREAD,
        int(total.group(1)) if total else 0,
    )


@dataclass(frozen=True)
class Window:
    seconds: float
    loop: int  # instructions on the event loop's thread

    @classmethod
    def joined(cls, windows: list[Window]) -> Window:
        """Several windows as one (the idle rate over all of them)."""
        return cls(sum(w.seconds for w in windows), sum(w.loop for w in windows))

    def rate(self) -> float:
        """Instructions a second on the event loop's thread."""
        return self.loop / self.seconds if self.seconds > 0 else 0.0


def per_request(busy: Window, idle: Window, requests: int) -> float:
    """Instructions per request on the event loop's thread, its idle rate taken off. The other
    threads (the control plane's client, executor threads for file scans) run no request's
    work in this configuration: their bursts made a per-request figure of noise around zero."""
    return (busy.loop - idle.rate() * busy.seconds) / max(requests, 1)


class Counter:
    """callgrind_control on one process under ``wrapper``."""

    def __init__(self, pid: int, out_dir: Path) -> None:
        self.pid = pid
        self.out_dir = out_dir
        self._dumps = 0

    def _control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.pid)], check=True, capture_output=True, timeout=60
        )

    def start(self) -> None:
        self._control("--instr=on")

    def window(self, work: Callable[[], None]) -> Window:
        """Zero the counters, run ``work``, dump: the instructions the loop's thread ran
        meanwhile. TimeoutError when that thread's dump never appears."""
        self._dumps += 1
        name = f"window-{self._dumps}"
        self._control("--zero")
        started = time.monotonic()
        work()
        seconds = time.monotonic() - started
        self._control(f"--dump={name}")
        loop: int | None = None
        deadline = time.monotonic() + _DUMP_WAIT_S
        # Each thread's file is written when that thread next runs under valgrind: read until
        # the loop's thread has written its own.
        while loop is None and time.monotonic() < deadline:
            time.sleep(_DUMP_SETTLE_S)
            for path in self.out_dir.glob(f"callgrind.{self.pid}.out*"):
                trigger, thread, total = parse_dump(path.read_text(errors="replace"))
                if trigger == f"dump {name}":  # callgrind's trigger for --dump=NAME
                    path.unlink()
                    if thread == MAIN_THREAD:
                        loop = total
        if loop is None:  # a zero would read as a request path that costs nothing
            raise TimeoutError(f"no callgrind dump of the loop's thread in {_DUMP_WAIT_S:g} s")
        return Window(seconds, loop)
