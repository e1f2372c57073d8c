"""The gRPC upstream's connection to a Triton that drops the handshake is bounded too.

``gateway/triton_http.py`` bounds its own connects (``CONNECT_SECONDS``); the gRPC client leaves
it to grpc-core, whose subchannel takes ``grpc.min_reconnect_backoff_ms`` as its minimum connect
timeout (20 s by default): ``TRITON_CHANNEL_OPTIONS`` sets 500 ms. Without a bound, a call with no
deadline (no client deadline, the REST door's timeout off) to a vanished host would wait for the
kernel's SYN retries, minutes.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gateway.triton_grpc import GrpcTriton
from gateway.triton_http import InstanceUnavailable
from tests.support.blackhole import NeverAccepting
from tfsgate.core.defaults import TRITON_CHANNEL_OPTIONS


def test_a_call_without_deadline_fails_unavailable_within_the_connect_bound() -> None:
    bound = dict(TRITON_CHANNEL_OPTIONS)["grpc.min_reconnect_backoff_ms"] / 1000

    async def main(address: str) -> None:
        triton = GrpcTriton(address)
        loop = asyncio.get_running_loop()
        x = {"x": np.zeros((1, 1), np.float32)}
        started = loop.time()
        with pytest.raises(InstanceUnavailable):
            await asyncio.wait_for(triton.infer("m", 1, x, [], None), 10)
        first = loop.time() - started
        # The channel is then in TRANSIENT_FAILURE: the next call fails at once (wait_for_ready
        # off), until a reconnect attempt succeeds.
        started = loop.time()
        with pytest.raises(InstanceUnavailable):
            await asyncio.wait_for(triton.infer("m", 1, x, [], None), 10)
        second = loop.time() - started
        assert not await asyncio.wait_for(triton.ready(), 10)
        await triton.close()
        assert bound * 0.8 <= first < bound + 1.5, first
        assert second < bound + 1.5, second

    with NeverAccepting() as port:
        asyncio.run(main(port.address))
