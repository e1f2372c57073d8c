"""How many Triton calls a coalescer lane keeps in flight: one or two, chosen by measurement.

With one call in flight, Triton idles while the gateway answers a batch and gathers the next; a
second call fills that turn when Triton's work is the larger (a 3x1024 MLP at 32 clients: +17-22 %
req/s with two calls always open) and only halves the batches, at more gateway CPU per request,
when the gateway's is (half_plus_two at 16 clients: -14 %). Timings of the call cannot tell which:
a second call opened once the first had run longer than the gateway's turn between calls still
opened on half_plus_two (its 0.4 ms calls outlast a 0.25 ms turn) and cost it 10 %. So each lane
measures what it is for: the mean time its requests take, epoch by epoch; now and then it tries
the other depth for one epoch and keeps it when its requests came back sooner than in the epoch
before (the gradient idea of adaptive concurrency limits, reduced to two settings).

A gateway with siblings on its ports keeps one (``most=1``, tfsgate/front_doors.py): their calls
already fill Triton's turn, so a second call per lane would only halve every batch.
"""

from __future__ import annotations

import math

# An epoch: this many requests answered, or this long (slow requests: a 1 MB REST tensor takes
# 25 ms, and a lane's traffic may change from small to large; a choice made on one kind is looked
# at again within seconds of the other). A probe: one epoch at the other depth after this many at
# the depth in use; it wins when its mean is lower by more than MARGIN (noise stays put).
EPOCH = 512
EPOCH_SECONDS = 0.5
PROBE_EVERY = 16
MARGIN = 0.05


class CallDepth:
    """The depth a lane uses now (``calls``), fed each request's times by ``record``."""

    __slots__ = (
        "_best",
        "_count",
        "_epoch",
        "_epochs",
        "_opened",
        "_probe_every",
        "_reference",
        "_seconds",
        "_total",
        "calls",
    )

    def __init__(
        self,
        epoch: int = EPOCH,
        seconds: float = EPOCH_SECONDS,
        probe_every: int = PROBE_EVERY,
        most: int = 2,
    ) -> None:
        self.calls = 1
        self._best = 1
        self._epoch = epoch
        self._seconds = seconds
        self._opened = 0.0  # when the epoch's first request was taken
        self._probe_every = probe_every if most > 1 else math.inf  # one call: nothing to try
        self._count = 0
        self._total = 0.0
        self._epochs = 0  # epochs at the best depth since the last probe
        self._reference = math.inf  # the mean of the last epoch at the best depth

    @property
    def chosen(self) -> int:
        """The depth the lane keeps between probes."""
        return self._best

    def record(self, began: float, ended: float) -> None:
        """A request of the lane taken at ``began``, answered (or given up) at ``ended``."""
        if not self._count:
            self._opened = began
        self._count += 1
        self._total += ended - began
        if self._count >= self._epoch or ended - self._opened >= self._seconds:
            self._close_epoch(self._total / self._count)

    def _close_epoch(self, mean: float) -> None:
        self._count, self._total = 0, 0.0
        if self.calls != self._best:  # a probe ended
            if mean < self._reference * (1 - MARGIN):
                self._best = self.calls
                self._reference = mean
            self.calls = self._best
            self._epochs = 0
            return
        self._reference = mean
        self._epochs += 1
        if self._epochs >= self._probe_every:
            self.calls = 3 - self._best  # the other of 1 and 2
