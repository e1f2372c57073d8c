"""Admin endpoints for rollouts and model quality, under ``/v1/admin``: shadow, thresholds,
guarded rollouts, feedback and per-version quality. Traffic splits live in ``routes``."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from control_plane.api.auth import Actor
from control_plane.api.routes import Ctx, _run
from control_plane.api.schemas import ErrorOut, Strict
from control_plane.quality.feedback import FeedbackService, parse_feedback
from control_plane.rollouts.guard import Thresholds
from control_plane.rollouts.service import RolloutService
from tfsgate.core.status import Code, ServingError

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 503)
}
MAX_WINDOW_SECONDS = 366 * 86400.0  # a year: datetime arithmetic overflows far beyond
rollout_router = APIRouter(prefix="/v1/admin", responses=_ERRORS)


class ShadowStats(Protocol):
    """Shadow comparison summaries, merged over every gateway (the catalog's observations)."""

    def summary(self, model: str) -> list[dict[str, object]]: ...


class RolloutParts:
    """What these endpoints drive; absent parts answer UNIMPLEMENTED."""

    def __init__(
        self,
        rollouts: RolloutService | None = None,
        feedback: FeedbackService | None = None,
        shadows: ShadowStats | None = None,
    ) -> None:
        self.rollouts = rollouts
        self.feedback = feedback
        self.shadows = shadows


async def get_parts(request: Request) -> RolloutParts:  # async: no thread hop
    parts: RolloutParts | None = getattr(request.app.state, "rollout_parts", None)
    return parts or RolloutParts()


Parts = Annotated[RolloutParts, Depends(get_parts)]


def _need(part: Any, what: str) -> Any:
    if part is None:
        raise ServingError(Code.UNIMPLEMENTED, f"{what} is not enabled on this server")
    return part


# -- shadow --------------------------------------------------------------------------------------
class ShadowIn(Strict):
    version: int = Field(ge=0, lt=2**63)
    percent: float = Field(gt=0, le=100, description="share of the model's requests copied")
    tolerance: float = Field(default=1e-6, ge=0, description="a row differs beyond this")


class ShadowOut(BaseModel):
    model: str
    shadow: dict[str, Any] | None
    comparisons: list[dict[str, Any]] = Field(
        default_factory=list,
        description="per (primary, shadow) version: errors, latency, max |diff|, share of rows "
        "beyond the tolerance, top-class change rate",
    )


async def _shadow_out(model: str, ctx: Any, parts: RolloutParts) -> ShadowOut:
    shadow = await _run(ctx.store.rollouts.get_shadow, model)
    config = None
    if shadow is not None:
        config = {
            "version": shadow.version,
            "percent": shadow.percent,
            "tolerance": shadow.tolerance,
        }
    comparisons = parts.shadows.summary(model) if parts.shadows is not None else []
    return ShadowOut(model=model, shadow=config, comparisons=comparisons)


@rollout_router.get("/models/{model}/shadow", tags=["shadow"], summary="Shadow config and summary")
async def get_shadow(model: str, ctx: Ctx, parts: Parts) -> ShadowOut:
    return await _shadow_out(model, ctx, parts)


@rollout_router.put("/models/{model}/shadow", tags=["shadow"], summary="Shadow a version")
async def set_shadow(model: str, body: ShadowIn, actor: Actor, ctx: Ctx, parts: Parts) -> ShadowOut:
    """Copy ``percent`` of the model's traffic to ``version`` in the background; callers get
    only the primary's answer."""
    await _run(
        ctx.store.rollouts.set_shadow, model, body.version, body.percent, body.tolerance, actor
    )
    await ctx.publish(model)
    return await _shadow_out(model, ctx, parts)


@rollout_router.delete("/models/{model}/shadow", tags=["shadow"], summary="Stop shadowing")
async def delete_shadow(model: str, actor: Actor, ctx: Ctx, parts: Parts) -> ShadowOut:
    await _run(ctx.store.rollouts.set_shadow, model, None, 0.0, 0.0, actor)
    await ctx.publish(model)
    return await _shadow_out(model, ctx, parts)


# -- thresholds ----------------------------------------------------------------------------------
class ThresholdsIn(Strict):
    window_seconds: float = Field(default=60.0, gt=0, le=MAX_WINDOW_SECONDS)
    min_requests: int = Field(default=20, ge=0)
    max_error_rate_increase: float = Field(default=0.01, ge=0)
    max_p99_ratio: float = Field(default=1.5, gt=0)
    min_p99_increase_seconds: float = Field(default=0.01, ge=0)
    min_latency_requests: int = Field(default=50, ge=0)
    quality_metric: str | None = Field(default=None, description="e.g. accuracy, auc_roc, rmse")
    max_quality_drop: float = Field(default=0.02, ge=0)
    min_feedback: int = Field(default=20, ge=0)


@rollout_router.get("/models/{model}/thresholds", tags=["rollouts"], summary="Guard thresholds")
async def get_thresholds(model: str, ctx: Ctx) -> dict[str, Any]:
    stored = await _run(ctx.store.rollouts.get_thresholds, model)
    return Thresholds.from_json(stored).to_json()


@rollout_router.put("/models/{model}/thresholds", tags=["rollouts"], summary="Set thresholds")
async def set_thresholds(model: str, body: ThresholdsIn, actor: Actor, ctx: Ctx) -> dict[str, Any]:
    value = Thresholds(**body.model_dump()).to_json()
    result: dict[str, Any] = await _run(ctx.store.rollouts.set_thresholds, model, value, actor)
    return result


# -- rollouts ------------------------------------------------------------------------------------
class RolloutIn(Strict):
    version: int = Field(ge=0, lt=2**63, description="the candidate")
    steps: list[int] = Field(default=[5, 25, 50, 100], description="candidate percent per step")
    interval_seconds: float = Field(
        default=300.0, gt=0, le=MAX_WINDOW_SECONDS, description="time per step"
    )


@rollout_router.post("/models/{model}/rollout", tags=["rollouts"], summary="Start a rollout")
async def start_rollout(
    model: str, body: RolloutIn, actor: Actor, ctx: Ctx, parts: Parts
) -> dict[str, Any]:
    """Move weight from ``stable`` to the candidate step by step; a breach of the model's
    thresholds sets the candidate's weight to 0, completion promotes it."""
    service: RolloutService = _need(parts.rollouts, "the rollout guard")
    record = await service.start(model, body.version, body.steps, body.interval_seconds, actor)
    return record.to_json()


@rollout_router.get("/models/{model}/rollout", tags=["rollouts"], summary="Rollout status")
async def rollout_status(model: str, ctx: Ctx, parts: Parts) -> dict[str, Any]:
    service: RolloutService = _need(parts.rollouts, "the rollout guard")
    status: dict[str, Any] = await asyncio.to_thread(service.status, model)
    return status


@rollout_router.post("/models/{model}/rollout/abort", tags=["rollouts"], summary="Abort")
async def abort_rollout(model: str, actor: Actor, ctx: Ctx, parts: Parts) -> dict[str, Any]:
    service: RolloutService = _need(parts.rollouts, "the rollout guard")
    return (await service.abort(model, actor)).to_json()


# -- feedback and quality ------------------------------------------------------------------------
@rollout_router.post("/models/{model}/feedback", tags=["quality"], summary="Ground truth")
async def post_feedback(
    model: str, body: dict[str, Any], actor: Actor, ctx: Ctx, parts: Parts
) -> dict[str, int]:
    """``{"feedback": [{"request_id": ..., "value": ...}]}``: how many ids matched a recorded
    prediction and how many did not (the same as REST ``POST /v1/models/{m}:feedback``)."""
    service: FeedbackService = _need(parts.feedback, "feedback")
    return await service.add(model, parse_feedback(body))


@rollout_router.get("/models/{model}/quality", tags=["quality"], summary="Online quality")
async def quality(
    model: str,
    ctx: Ctx,
    parts: Parts,
    window_seconds: Annotated[
        float, Query(ge=0, le=MAX_WINDOW_SECONDS, description="0: all feedback")
    ] = 3600.0,
    task: Annotated[str | None, Query(description="regression, binary, multiclass, ...")] = None,
) -> dict[str, Any]:
    service: FeedbackService = _need(parts.feedback, "feedback")
    metrics = await asyncio.to_thread(service.metrics, model, window_seconds, task)
    return {"model": model, "versions": {str(v): m for v, m in metrics.items()}}
