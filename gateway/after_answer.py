"""After the answer is in hand, off the request path (never awaited): a sampled request goes to the
prediction logger, a shadowed one to the shadow runner; nothing happens for a model whose route
has neither."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np

from gateway import metrics
from gateway.prediction_log import LogEntry, PredictionLogger
from gateway.shadow import Call, Copy, ShadowRunner
from gateway.types import ClassifyResult, PredictResult, RegressResult, Tensors
from tfsgate.core.routing_table import ModelRoute, Target


class AfterAnswer:
    def __init__(self, logger: PredictionLogger | None, shadows: ShadowRunner) -> None:
        self.logger = logger
        self.shadows = shadows

    def single(
        self,
        route: ModelRoute,
        target: Target,
        kind: str,
        inputs: Tensors,
        output_filter: Sequence[str],
        result: PredictResult | ClassifyResult | RegressResult,
        seconds: float,
        request_id: str,
        raw: Tensors | None = None,
    ) -> None:
        """Sampled logging and shadow copies, off the request path."""
        policy = route.logging
        if (
            policy is not None
            and self.logger is not None
            and random.random() < policy.sampling_rate
        ):
            logged = inputs if kind == "predict" else next(iter(inputs.values()))
            self.logger.submit(
                LogEntry(
                    kind,
                    result.spec,
                    request_id,
                    policy,
                    logged,
                    result,
                    tuple(output_filter),
                    time.time(),
                )
            )
        shadow = route.shadow
        if shadow is not None and random.random() * 100 < shadow.percent:
            metrics.routed(route.name, shadow.version, "", "shadow")
            outputs = raw if raw is not None else getattr(result, "outputs", {})
            call = Call(target, inputs, tuple(output_filter), outputs)
            self.shadows.send(Copy(route, shadow, (call,), seconds, request_id))

    def multi(
        self,
        route: ModelRoute,
        batch: np.ndarray,
        results: list[ClassifyResult | RegressResult],
        calls: tuple[Call, ...],
        seconds: float,
        request_id: str,
    ) -> None:
        """MultiInference's logging (one ``multi_inference_log``) and shadow copy (every task)."""
        policy = route.logging
        if (
            policy is not None
            and self.logger is not None
            and random.random() < policy.sampling_rate
        ):
            entry = LogEntry(
                "multi_inference",
                results[0].spec,
                request_id,
                policy,
                batch,
                results,
                (),
                time.time(),
            )
            self.logger.submit(entry)
        shadow = route.shadow
        if shadow is not None and random.random() * 100 < shadow.percent:
            self.shadows.send(Copy(route, shadow, calls, seconds, request_id))
