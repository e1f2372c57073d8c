from __future__ import annotations

import socket
from pathlib import Path

from tfsgate.core import ports


def test_ports_are_listenable_distinct_and_below_the_ephemeral_range() -> None:
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    picked = [ports.free_port() for _ in range(50)]
    assert len(set(picked)) == len(picked)
    assert all(10_000 <= port < first_ephemeral for port in picked)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", picked[0]))
        sock.listen()


def test_a_port_in_use_is_never_handed_out() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.free_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        assert taken not in {ports.free_port() for _ in range(200)}
