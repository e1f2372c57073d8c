"""FrontDoors: how the lanes' call depth follows --reuse_port (siblings on the ports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.grpc_service import GrpcOptions
from gateway.rest import RestOptions
from gateway.routing import Router
from gateway.upstream import TritonInferenceClient
from tfsgate.front_doors import FrontDoors
from tfsgate.settings import ServeSettings


@pytest.mark.parametrize(("reuse_port", "most"), [(False, 2), (True, 1)])
def test_a_gateway_beside_siblings_keeps_one_call_a_lane(
    tmp_path: Path, reuse_port: bool, most: int
) -> None:
    settings = ServeSettings(home=str(tmp_path), reuse_port=reuse_port)
    doors = FrontDoors(
        settings, Router(), TritonInferenceClient(""), 64, GrpcOptions(), RestOptions()
    )
    coalescer = doors.dataplane.coalescer
    assert coalescer is not None
    depth = coalescer.new_depth()
    seen: set[int] = set()
    clock = 100.0
    for _ in range(40):  # past any probe: a lane alone tries two calls now and then
        depth.record(clock, clock + 0.6)  # longer than an epoch's seconds: it closes the epoch
        clock += 0.6
        seen.add(depth.calls)
    assert max(seen) == most
