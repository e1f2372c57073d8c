"""What this host charges for an exchange between two processes: the part of a proxy's cost
that no code of its own removes.

A request through tfsgate is two loopback exchanges for the gateway (it receives the client's
request and answers it; it sends Triton a call and receives the answer), where Triton direct
serves the client in one. Here two processes exchange small messages over loopback TCP as
those do (TCP_NODELAY, one message in flight, each side blocking until the other answers), on
different CPUs, on one CPU, and wherever the scheduler puts them: the round trip, and each
side's CPU per exchange (its send, its wait and its receive; ``getrusage``).

On a VM a wake-up across CPUs can cost several times one on the same CPU (the interrupt that
wakes the other CPU leaves the guest), so the two placements bound what the host charges.
Run by hand: ``python -m bench.exchange`` (one JSON line per placement).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from typing import Any

from bench.procs import pin

MESSAGE = 128  # bytes each way, about a small :predict request
WARM_UP = 200


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def placements() -> dict[str, tuple[int, int] | None]:
    """Placement name -> (this side's CPU, the echo side's), None: the scheduler's choice."""
    cpus = sorted(os.sched_getaffinity(0))
    found: dict[str, tuple[int, int] | None] = {"scheduler": None, "one CPU": (cpus[0], cpus[0])}
    if len(cpus) > 1:
        found["two CPUs"] = (cpus[0], cpus[1])
    return found


def measure(name: str, cpus: tuple[int, int] | None, exchanges: int) -> dict[str, Any]:
    """One placement, measured in this process and a forked echo side (call it in a process
    of its own: it pins itself, and forking is safe only without other threads)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    report_r, report_w = os.pipe()
    message = b"x" * MESSAGE
    pid = os.fork()
    if pid == 0:  # the echo side
        try:
            if cpus:
                pin([os.getpid()], {cpus[1]})
            peer = socket.create_connection(listener.getsockname())
            peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(WARM_UP):
                _echo(peer)
            began = _cpu()
            for _ in range(exchanges):
                _echo(peer)
            os.write(report_w, repr(_cpu() - began).encode())
        finally:
            os._exit(0)
    os.close(report_w)
    if cpus:
        pin([os.getpid()], {cpus[0]})
    peer, _ = listener.accept()
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(WARM_UP):
        _ask(peer, message)
    began, cpu = time.perf_counter(), _cpu()
    for _ in range(exchanges):
        _ask(peer, message)
    seconds, cpu = time.perf_counter() - began, _cpu() - cpu
    reported = os.read(report_r, 64)
    os.waitpid(pid, 0)
    if not reported:
        raise RuntimeError("the echo side ended without its CPU figure")
    echo_cpu = float(reported)
    return {
        "placement": name,
        "exchanges": exchanges,
        "round_trip_us": seconds / exchanges * 1e6,
        "cpu_us": (cpu + echo_cpu) / 2 / exchanges * 1e6,
    }


def _ask(peer: socket.socket, message: bytes) -> None:
    peer.sendall(message)
    _receive(peer)


def _echo(peer: socket.socket) -> None:
    peer.sendall(_receive(peer))


def _receive(peer: socket.socket) -> bytes:
    got = peer.recv(MESSAGE)
    while len(got) < MESSAGE:  # TCP may split even a small message
        more = peer.recv(MESSAGE - len(got))
        if not more:
            raise ConnectionError("the other side closed")
        got += more
    return got


def run(exchanges: int = 5000) -> list[dict[str, Any]]:
    """Every placement, each in a fresh process (the caller's affinity and threads untouched)."""
    rows = []
    for name in placements():
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.exchange",
                "--placement",
                name,
                f"--exchanges={exchanges}",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        rows.append(json.loads(done.stdout))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--placement", choices=list(placements()), default=None)
    parser.add_argument("--exchanges", type=int, default=5000)
    args = parser.parse_args()
    if args.placement is None:  # each placement in a process of its own, as run() does
        for row in run(args.exchanges):
            print(json.dumps(row))
        return
    print(json.dumps(measure(args.placement, placements()[args.placement], args.exchanges)))


if __name__ == "__main__":
    main()
