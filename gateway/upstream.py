"""The one upstream client: inference calls to the Triton instances, raw tensor bytes both ways.

An instance is reached over its HTTP endpoint (``http://host:port``: KServe v2 with binary tensor
data, ``gateway/triton_http.py``), the cheaper path for a Python gateway, or over gRPC
(``host:port``: ``gateway/triton_grpc.py``) when only that address is known. Triton's errors
become ``ServingError`` in those two modules and nowhere else.

Several Triton instances (``--triton_url`` repeated) serve the same models: calls go round robin
over the instances last seen READY (a probe every half second, ``run_probes``), and a call that an
instance could not serve (unreachable, or the model not loaded there: ``InstanceUnavailable``, so
nothing ran) is made again on the next one, and that instance is skipped for a second. Every
call made here (ModelInfer for Predict, Classify, Regress, MultiInference) is idempotent, so an
instance that dies fails no request while another one serves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway import metrics
from gateway.triton_grpc import GrpcTriton
from gateway.triton_http import HttpTriton, InstanceUnavailable
from gateway.types import Hold, Tensors
from tfsgate.core.pauses import pause
from tfsgate.core.status import Code, ServingError

PROBE_SECONDS = 0.5
SKIP_SECONDS = 1.0  # an instance that failed a call is passed over this long (or until a probe)


class Endpoint(Protocol):
    url: str

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: float | None,
        hold: Hold | None = None,
    ) -> Tensors: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


def open_endpoint(url: str) -> Endpoint:
    """``http://host:port``: Triton's HTTP endpoint; ``host:port``: its gRPC endpoint."""
    return HttpTriton(url) if url.startswith("http://") else GrpcTriton(url)


@dataclass
class _Instance:
    name: str  # its label in metrics
    endpoint: Endpoint
    ready: bool = True  # optimistic until a probe or a call says otherwise
    skip_until: float = 0.0

    @property
    def url(self) -> str:
        return self.endpoint.url

    def usable(self, now: float) -> bool:
        return self.ready and now >= self.skip_until


class TritonInferenceClient:
    """The connections to every Triton instance, per gateway process."""

    def __init__(
        self,
        urls: str | Sequence[str],
        default_timeout: float | None = None,
        name: str = "",
    ) -> None:
        """``urls`` empty: no Triton known yet (a gateway waiting for the routing feed);
        calls are UNAVAILABLE until ``set_urls``. ``name`` labels a single instance in metrics
        (stable across repoints: a restarted embedded Triton listens elsewhere)."""
        listed = [urls] if isinstance(urls, str) else list(urls)
        self.default_timeout = default_timeout
        self._name = name
        self._instances = [self._open(u) for u in listed if u]
        self._turn = 0

    def _open(self, url: str) -> _Instance:
        return _Instance(self._name or url, open_endpoint(url))

    @property
    def url(self) -> str:
        """The first instance's URL ("" when none is known)."""
        return self._instances[0].url if self._instances else ""

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(i.url for i in self._instances)

    @property
    def name(self) -> str:
        return self._instances[0].name if self._instances else self._name

    def any_ready(self) -> bool:
        return any(i.ready for i in self._instances)

    async def close(self) -> None:
        for instance in self._instances:
            await instance.endpoint.close()

    async def repoint(self, url: str) -> None:
        """Switch to a restarted Triton; requests in flight finish on the old connections."""
        await self.set_urls([url])

    async def set_urls(self, urls: Sequence[str]) -> None:
        """Serve from ``urls`` from now on; connections to instances kept are reused."""
        kept = {i.url: i for i in self._instances}
        self._instances = [
            kept.pop(u) if u in kept else self._open(u) for u in dict.fromkeys(urls) if u
        ]
        for old in kept.values():
            metrics.forget_triton(old.name)  # no stale readiness for an address gone
            await old.endpoint.close()

    async def ready(self) -> bool:
        """Whether any instance answers READY."""
        return any(await asyncio.gather(*(i.endpoint.ready() for i in self._instances)))

    async def probe(self) -> None:
        """Ask every instance whether it is READY (one second at most)."""
        instances = list(self._instances)
        answers = await asyncio.gather(*(i.endpoint.ready() for i in instances))
        for instance, ready in zip(instances, answers, strict=True):
            instance.ready = ready
            if ready:
                instance.skip_until = 0.0
            metrics.triton_ready(instance.name, ready)

    async def run_probes(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.probe()
            await pause(stopping, PROBE_SECONDS)

    def _candidates(self) -> list[_Instance]:
        """Usable instances round robin, then the others: when none looks usable, trying is
        still better than failing."""
        instances = self._instances
        if len(instances) <= 1:
            return list(instances)
        self._turn = (self._turn + 1) % len(instances)
        turned = instances[self._turn :] + instances[: self._turn]
        now = time.monotonic()
        return [i for i in turned if i.usable(now)] + [i for i in turned if not i.usable(now)]

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: float | None = None,
        hold: Hold | None = None,
    ) -> Tensors:
        """Run one inference; ``outputs`` names the tensors wanted (all of them when empty);
        ``hold``: see ``Hold``."""
        candidates = self._candidates()
        if not candidates:
            raise ServingError(Code.UNAVAILABLE, "no Triton instance known yet")
        deadline = timeout if timeout is not None else self.default_timeout
        for attempt, instance in enumerate(candidates, 1):
            started = time.perf_counter()
            try:
                return await instance.endpoint.infer(
                    model, version, inputs, outputs, deadline, hold
                )
            except InstanceUnavailable:
                if attempt < len(candidates):
                    instance.skip_until = time.monotonic() + SKIP_SECONDS
                    continue  # nothing ran there: the next instance
                raise
            finally:
                metrics.triton_call(model, version, instance.name, time.perf_counter() - started)
        raise AssertionError("unreachable: the last candidate returns or raises")
