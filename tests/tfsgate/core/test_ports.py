from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tfsgate.core import ports
from tfsgate.preflight import check_port_free
from tfsgate.startup import StartupError


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


def test_a_port_checked_for_a_front_door_is_never_handed_to_triton(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tfsgate serve checks its door ports, then picks the embedded Triton's ports, then binds the
    # doors: CI once saw Triton given the REST port in between (EADDRINUSE at the door).
    low = ports.free_port()
    window = range(low, low + 1_000)
    monkeypatch.setattr(ports, "_below_ephemeral", lambda: window)
    monkeypatch.setattr(ports, "_given", set())
    doors = []
    for port in window[::2]:
        try:
            check_port_free("127.0.0.1", port, "--rest_api_port")
        except StartupError:  # in use by something else on this machine: not a door here
            continue
        doors.append(port)
    assert len(doors) > 400
    handed = {ports.free_port() for _ in range(300)}
    assert handed.isdisjoint(doors)
    assert handed & set(window[1::2])  # the window's other ports are still handed out


def test_reserving_port_zero_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_given", set())
    ports.reserve(0)
    assert ports._given == set()
