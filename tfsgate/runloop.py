"""The heap of a long-running tfsgate process, settled once it serves.

After start-up the objects that live for the whole process (modules, protobuf descriptors, the
routing table) are moved out of the collector's reach with ``gc.freeze()``, and the young
generation is collected less often: a request allocates many short-lived containers, and a full
collection over a heap of start-up objects is a latency spike for whichever request it lands on.

The event loop is uvloop's (``tfsgate/lifecycle.py``). It was measured costlier while grpc.aio's
server and client carried the gateway's calls (40-50 % more CPU per request); since both doors and
the Triton client are plain asyncio protocols it is the cheaper loop: two ``tfsgate serve`` side by
side, six interleaved rounds, the gateway's CPU per request (median) REST 310 -> 281 us at 1
client and 111 -> 106 us at 16, gRPC 333 -> 298 and 116 -> 105 us; sequential sweeps show the
1-client gain and drift more than the change at 16 clients (docs/performance.md, eleventh pass).
"""

from __future__ import annotations

import gc

# Generation-0 threshold (CPython's default is 700): fewer young collections per request; the
# older generations keep their defaults. Cycles are still collected, in larger batches.
YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Call once start-up is done: what exists now lives for good (not scanned again)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
