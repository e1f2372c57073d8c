"""Feedback: ground truth by request id, joined with recorded predictions into online metrics.

``POST /v1/models/{m}:feedback`` (REST) and the admin API's equivalent take
``{"feedback": [{"request_id": "...", "value": <number, label or list>}]}``. A malformed body is
INVALID_ARGUMENT and changes nothing; otherwise the answer says how many ids matched a recorded
prediction and how many did not. An id without a recorded prediction is reported as unmatched,
never guessed. Metrics per version come from ``control_plane.quality.metrics`` over the window.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from prometheus_client import Gauge

from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.quality.metrics import Pair, compute
from tfsgate.core.status import Code, ServingError

log = logging.getLogger(__name__)

MAX_ITEMS = 100_000
MAX_WINDOW_SECONDS = 10 * 366 * 86400.0
MAX_ID_LENGTH = 128
QUALITY = Gauge(
    "tfsgate_quality", "Online quality per version from feedback", ["model", "version", "metric"]
)
FEEDBACK_COUNT = Gauge(
    "tfsgate_quality_feedback",
    "Feedback rows joined per version in the window",
    ["model", "version"],
)


def _bad(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def _check_value(value: Any, where: str) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(f"{where}: value must be finite")
        return value
    if isinstance(value, list) and all(
        isinstance(v, int | float | str) and not isinstance(v, bool) for v in value
    ):
        return value
    raise _bad(f"{where}: value must be a number, a label or a list of them")


def parse_feedback(body: bytes | Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (request id, value) pairs of a feedback body; INVALID_ARGUMENT when malformed."""
    if isinstance(body, bytes | bytearray):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _bad(f"feedback body is not JSON: {exc}") from None
    else:
        document = body
    if not isinstance(document, dict) or set(document) != {"feedback"}:
        raise _bad('feedback body must be {"feedback": [{"request_id": ..., "value": ...}]}')
    items = document["feedback"]
    if not isinstance(items, list) or not items:
        raise _bad('"feedback" must be a non-empty list')
    if len(items) > MAX_ITEMS:
        raise _bad(f'"feedback" holds at most {MAX_ITEMS} items')
    parsed = []
    for index, item in enumerate(items):
        where = f"feedback[{index}]"
        if not isinstance(item, dict) or set(item) != {"request_id", "value"}:
            raise _bad(f'{where} must be {{"request_id": ..., "value": ...}}')
        request_id = item["request_id"]
        if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_ID_LENGTH:
            raise _bad(f"{where}: request_id must be a string of 1..{MAX_ID_LENGTH} characters")
        parsed.append((request_id, _check_value(item["value"], where)))
    return parsed


def pairs_of(prediction: Mapping[str, Any], value: Any) -> list[Pair]:
    """One recorded prediction and its truth as metric rows (a list truth per row when the
    request had several rows)."""
    rows = prediction.get("rows") or []
    classes = tuple(prediction.get("classes") or ())
    if len(rows) == 1:
        return [Pair(rows[0], value, classes)]
    if isinstance(value, list) and len(value) == len(rows):
        return [Pair(r, v, classes) for r, v in zip(rows, value, strict=True)]
    return []


class FeedbackService:
    """Feedback in, per-version metrics out."""

    def __init__(
        self,
        store: CatalogStore,
        flush: Callable[[], Awaitable[None]] | None = None,
        window_seconds: float = 3600.0,
    ) -> None:
        self.store = store
        self.flush = flush
        self.window_seconds = window_seconds

    async def feedback(self, model: str, body: bytes | Mapping[str, Any]) -> bytes:
        """The REST handler: parse, wait for recorded predictions to land, join."""
        items = parse_feedback(body)
        return orjson.dumps(await self.add(model, items))

    async def add(self, model: str, items: list[tuple[str, Any]]) -> dict[str, int]:
        if self.flush is not None:
            await self.flush()  # a prediction answered a moment ago must be matchable
        try:
            matched, unmatched = await asyncio.to_thread(
                self.store.rollouts.add_feedback, model, items
            )
        except CatalogError as exc:
            raise ServingError(exc.code, exc.message) from exc
        return {"matched": matched, "unmatched": unmatched}

    def refresh(self, models: Iterable[str]) -> None:
        """Recompute every model's metrics so the Prometheus gauges follow new feedback."""
        for model in models:
            try:
                self.metrics(model)
            except CatalogError:
                continue  # a model removed meanwhile

    def metrics(
        self, model: str, window_seconds: float | None = None, task: str | None = None
    ) -> dict[int, dict[str, Any]]:
        """Per version: rows joined, and every metric of the task defined on them (blocking)."""
        window = self.window_seconds if window_seconds is None else window_seconds
        window = min(window, MAX_WINDOW_SECONDS)
        since = datetime.now(UTC) - timedelta(seconds=window) if window > 0 else None
        result: dict[int, dict[str, Any]] = {}
        for version, joined in self.store.rollouts.feedback_pairs(model, since).items():
            rows = [p for prediction, value in joined for p in pairs_of(prediction, value)]
            try:
                computed = compute(rows, task) if rows else {}
            except (ValueError, TypeError, IndexError) as exc:
                log.warning("quality of %s version %s: %s", model, version, exc)
                computed = {}
            result[version] = {"feedback": len(rows), "metrics": computed}
            FEEDBACK_COUNT.labels(model, str(version)).set(len(rows))
            for name, number in computed.items():
                QUALITY.labels(model, str(version), name).set(number)
        return result
