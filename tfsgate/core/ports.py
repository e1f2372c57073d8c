"""Free TCP ports for the processes tfsgate starts (the embedded tritonserver) and for its tests.

``bind(("", 0))`` hands out a port from the kernel's ephemeral range, the same range outgoing
connections take their local ports from: between picking such a port and the child binding it, a
client connection may take it (seen as EADDRINUSE when many connections are open). Ports are
picked below that range instead, and one process never hands out the same port twice, nor a
port it was told to serve on (``reserve``): ``tfsgate serve`` picks Triton's ports before its
front doors bind theirs, so a door port in that range could be handed to Triton in between (the
likely cause of an EADDRINUSE at a REST door once seen in CI).
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000  # above the well-known and most registered service ports
_given: set[int] = set()
_lock = threading.Lock()


def _below_ephemeral() -> range:
    try:
        first = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32_768  # Linux's default range starts here
    return range(_LOWEST, max(_LOWEST, first))


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers bind (SO_REUSEADDR): a port left in TIME_WAIT is free for them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reserve(port: int) -> None:
    """Keep ``port`` (one this process will bind later) out of what ``free_port`` hands out."""
    if port:
        with _lock:
            _given.add(port)


def free_port() -> int:
    """A TCP port nothing listens on now, outside the ephemeral range when the machine has room."""
    candidates = _below_ephemeral()
    with _lock:
        for _ in range(200 if len(candidates) >= 1_000 else 0):
            port = random.choice(candidates)
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
        port = _kernel_port()
        _given.add(port)
        return port
