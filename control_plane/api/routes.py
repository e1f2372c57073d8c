"""The admin endpoints, under ``/v1/admin``. One catalog verb (one transaction, one audit
event) per mutation, then the reconciler applies it: a reconcile pass for what Triton serves,
a routing-table publish for labels and traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from control_plane.api.auth import Actor
from control_plane.api.context import AdminContext
from control_plane.api.paths import require_directory, resolve_within
from control_plane.api.schemas import (
    ErrorOut,
    EventList,
    EventOut,
    ImportVersionIn,
    LabelIn,
    LabelsOut,
    ModelList,
    ModelOut,
    ModelSettingsIn,
    ModelStatsOut,
    PromoteIn,
    RegisterModelIn,
    RollbackIn,
    SignatureStatsOut,
    StableOut,
    TrafficIn,
    TrafficOut,
    VersionList,
    VersionOut,
    VersionStatsOut,
)
from control_plane.catalog.entities import (
    PREVIOUS_STABLE_LABEL,
    STABLE_LABEL,
    Expect,
    ExpectedStable,
    StableMove,
    VersionPin,
    VersionState,
)
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import DEFAULT_EVENT_LIMIT
from control_plane.sources.base_path import SourceError, discover_versions
from tfsgate.core.status import Code


# async: FastAPI runs a plain def dependency in its thread pool, a thread hop per call.
async def get_context(request: Request) -> AdminContext:
    context: AdminContext = request.app.state.context
    return context


Ctx = Annotated[AdminContext, Depends(get_context)]
Version = Annotated[int, PathParam(ge=0, lt=2**63)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 503)
}
router = APIRouter(prefix="/v1/admin", responses=_ERRORS)


def _run(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Blocking catalog work goes to a thread so the event loop keeps serving."""
    return asyncio.to_thread(call, *args, **kwargs)


# -- models --------------------------------------------------------------------------------------
@router.get("/models", tags=["models"], summary="List models with versions, labels and traffic")
async def list_models(ctx: Ctx) -> ModelList:
    def build() -> ModelList:
        return ModelList(models=[ctx.model_out(m.name) for m in ctx.store.list_models()])

    result: ModelList = await _run(build)
    return result


@router.get("/models/{model}", tags=["models"], summary="One model")
async def get_model(model: str, ctx: Ctx) -> ModelOut:
    result: ModelOut = await _run(ctx.model_out, model)
    return result


@router.post("/models", status_code=201, tags=["models"], summary="Register a model")
async def register_model(body: RegisterModelIn, actor: Actor, ctx: Ctx) -> ModelOut:
    """Serve a new model from a base path inside the model roots (it survives restarts).

    A retired model (in the catalog, no longer served) of that name is taken over; a served one
    is ALREADY_EXISTS.
    """
    base_path = require_directory(resolve_within(body.base_path, ctx.roots()), "base path")
    await _run(_register, ctx, body, str(base_path), actor)
    await ctx.apply()
    result: ModelOut = await _run(ctx.model_out, body.name)
    return result


def _register(ctx: AdminContext, body: RegisterModelIn, base_path: str, actor: str) -> None:
    try:
        existing = ctx.store.get_model(body.name)
    except CatalogError as exc:
        if exc.code != Code.NOT_FOUND:
            raise
        ctx.store.create_model(body.name, base_path, body.policy, actor, admin_registered=True)
        return
    if ctx.source_of(existing) != "retired":
        raise CatalogError(Code.ALREADY_EXISTS, f"model {body.name!r} is already served")
    ctx.store.update_model(
        body.name, actor=actor, base_path=base_path, policy=body.policy, admin_registered=True
    )


@router.patch("/models/{model}", tags=["models"], summary="Runner setting and response cache")
async def update_model_settings(
    model: str, body: ModelSettingsIn, actor: Actor, ctx: Ctx
) -> ModelOut:
    """Force a runner or let each signature's parity check decide (auto); turn Triton's response
    cache on or off. The versions are converted again and reloaded under the new setting."""
    if body.runner == "onnxruntime":
        await _run(_check_onnxruntime_possible, ctx, model)
    await _run(
        ctx.store.update_model,
        model,
        actor=actor,
        runner=body.runner,
        response_cache=body.response_cache,
    )
    await ctx.apply()
    result: ModelOut = await _run(ctx.model_out, model)
    return result


@router.get("/models/{model}/stats", tags=["models"], summary="Triton's counters per signature")
async def model_stats(model: str, ctx: Ctx) -> ModelStatsOut:
    """Rows answered, runner calls (dynamic batching makes them fewer), response-cache hits
    and misses, per loaded version and signature."""
    await _run(ctx.store.get_model, model)  # NOT_FOUND for an unknown model
    found = await ctx.reconciler.statistics(model)
    versions = [
        VersionStatsOut(
            version=version,
            signatures={
                name: SignatureStatsOut(
                    inference_count=stats.inference_count,
                    execution_count=stats.execution_count,
                    cache_hits=stats.cache_hits,
                    cache_misses=stats.cache_misses,
                )
                for name, stats in sorted(signatures.items())
            },
        )
        for version, signatures in sorted(found.items())
    ]
    return ModelStatsOut(model=model, versions=versions)


def _check_onnxruntime_possible(ctx: AdminContext, model: str) -> None:
    """Refuse ``runner: onnxruntime`` with the figures while a live version has a signature
    whose conversion failed or did not match TensorFlow."""
    live = {VersionState.START, VersionState.LOADING, VersionState.AVAILABLE}
    refused = []
    for version in ctx.store.list_model_versions(model):
        if version.state not in live:
            continue
        for name, data in sorted((version.runners.get("signatures") or {}).items()):
            if data.get("runner") in ("onnxruntime", "tflite"):  # tflite: the setting is moot
                continue
            error = data.get("max_abs_error")
            figures = "" if error is None else f" (max_abs_error {error:g})"
            reason = data.get("fallback_reason") or "served by TensorFlow"
            refused.append(f"version {version.version} signature {name!r}: {reason}{figures}")
    if refused:
        raise CatalogError(
            Code.FAILED_PRECONDITION, "runner onnxruntime refused: " + "; ".join(refused)
        )


@router.delete("/models/{model}", tags=["models"], summary="Stop serving an admin-registered model")
async def unregister_model(model: str, actor: Actor, ctx: Ctx) -> ModelOut:
    """Its versions are unloaded (END); catalog rows and audit history stay."""
    found = await _run(ctx.store.get_model, model)
    source = ctx.source_of(found)
    if source != "admin":
        why = "listed by flags or --model_config_file" if source == "config" else "not served"
        raise CatalogError(Code.FAILED_PRECONDITION, f"model {model!r} is {why}")
    await _run(ctx.store.update_model, model, actor=actor, admin_registered=False)
    await ctx.apply()
    result: ModelOut = await _run(ctx.model_out, model)
    return result


# -- versions ------------------------------------------------------------------------------------
@router.get("/models/{model}/versions", tags=["versions"], summary="A model's versions")
async def list_versions(model: str, ctx: Ctx) -> VersionList:
    return VersionList(versions=(await _run(ctx.model_out, model)).versions)


@router.get("/models/{model}/versions/{version}", tags=["versions"], summary="One version")
async def get_version(model: str, version: Version, ctx: Ctx) -> VersionOut:
    result: VersionOut = await _run(ctx.version_out, model, version)
    return result


@router.post(
    "/models/{model}/versions", status_code=201, tags=["versions"], summary="Import a version"
)
async def import_version(model: str, body: ImportVersionIn, actor: Actor, ctx: Ctx) -> VersionOut:
    """Copy a SavedModel directory from inside the model roots to ``<base_path>/<version>``.

    Whether it is then loaded follows the version policy (pin it with ``load`` to force it).
    """
    source = require_directory(resolve_within(body.source_path, ctx.roots()), "source path")
    await _run(ctx.store.get_model, model)  # NOT_FOUND before touching any file
    created = await ctx.reconciler.import_version(model, source, actor, version=body.version)
    result: VersionOut = await _run(ctx.version_out, model, created.version)
    return result


@router.post("/models/{model}/versions/{version}/load", tags=["versions"], summary="Load")
async def load_version(model: str, version: Version, actor: Actor, ctx: Ctx) -> VersionOut:
    """Pin a version loaded whatever the policy says; a version only on disk is imported."""
    known = await _run(_find_version, ctx, model, version)
    if known:
        await _run(ctx.store.set_model_version_pin, model, version, VersionPin.LOAD, actor)
        await ctx.apply()
    else:
        source = await _run(_on_disk, ctx, model, version)
        await ctx.reconciler.import_version(
            model, source, actor, version=version, pin=VersionPin.LOAD
        )
    result: VersionOut = await _run(ctx.version_out, model, version)
    return result


@router.post("/models/{model}/versions/{version}/unload", tags=["versions"], summary="Unload")
async def unload_version(model: str, version: Version, actor: Actor, ctx: Ctx) -> VersionOut:
    """Pin a version unloaded; "latest" policies fall back to the next version.

    Refused (FAILED_PRECONDITION) while a label or a traffic weight points at it.
    """
    return await _set_pin(ctx, model, version, VersionPin.UNLOAD, actor)


@router.delete("/models/{model}/versions/{version}/pin", tags=["versions"], summary="Unpin")
async def unpin_version(model: str, version: Version, actor: Actor, ctx: Ctx) -> VersionOut:
    """Drop a load/unload pin: the version policy decides again."""
    return await _set_pin(ctx, model, version, None, actor)


async def _set_pin(
    ctx: AdminContext, model: str, version: int, pin: VersionPin | None, actor: str
) -> VersionOut:
    await _run(ctx.store.set_model_version_pin, model, version, pin, actor)
    await ctx.apply()
    result: VersionOut = await _run(ctx.version_out, model, version)
    return result


def _find_version(ctx: AdminContext, model: str, version: int) -> bool:
    return any(v.version == version for v in ctx.store.list_model_versions(model))


def _on_disk(ctx: AdminContext, model: str, version: int) -> Path:
    base_path = Path(ctx.store.get_model(model).base_path)
    try:
        found = discover_versions(base_path)
    except SourceError as exc:
        raise CatalogError(Code.FAILED_PRECONDITION, str(exc)) from exc
    if version not in found:
        raise CatalogError(
            Code.NOT_FOUND, f"model {model!r} has no version {version} in {base_path}"
        )
    return found[version]


# -- labels --------------------------------------------------------------------------------------
RESERVED = (STABLE_LABEL, PREVIOUS_STABLE_LABEL)


def _not_reserved(label: str) -> None:
    if label in RESERVED:
        raise CatalogError(
            Code.INVALID_ARGUMENT,
            f"label {label!r} is managed by promote and rollback; use those",
        )


@router.get("/models/{model}/labels", tags=["labels"], summary="A model's labels")
async def list_labels(model: str, ctx: Ctx) -> LabelsOut:
    return LabelsOut(model=model, labels=await _run(ctx.store.list_labels, model))


@router.put("/models/{model}/labels/{label}", tags=["labels"], summary="Set or move a label")
async def set_label(model: str, label: str, body: LabelIn, actor: Actor, ctx: Ctx) -> LabelsOut:
    """TF Serving's rule: the version must be AVAILABLE, unless the label is new and
    ``--allow_version_labels_for_unavailable_models`` is set."""
    _not_reserved(label)
    allow = ctx.settings.allow_version_labels_for_unavailable_models
    await _run(ctx.store.set_model_version_label, model, label, body.version, actor, allow)
    await ctx.publish(model)
    return LabelsOut(model=model, labels=await _run(ctx.store.list_labels, model))


@router.delete("/models/{model}/labels/{label}", tags=["labels"], summary="Delete a label")
async def delete_label(model: str, label: str, actor: Actor, ctx: Ctx) -> LabelsOut:
    _not_reserved(label)
    await _run(ctx.store.delete_model_version_label, model, label, actor)
    await ctx.publish(model)
    return LabelsOut(model=model, labels=await _run(ctx.store.list_labels, model))


# -- promote / rollback --------------------------------------------------------------------------
async def _move_stable(
    ctx: AdminContext,
    model: str,
    body: PromoteIn | RollbackIn,
    verb: Callable[[ExpectedStable], StableMove],
) -> StableOut:
    """``verb``, a promote or rollback given the expected stable, in one thread hop (in ``tfsgate
    serve`` each hop is a GIL hand-off the serving event loop waits on); the answer is the labels
    the verb's transaction left. A body without ``expected_stable`` expects the stable the
    transaction reads as it begins."""
    expected = body.expected_stable if "expected_stable" in body.model_fields_set else Expect.ANY
    move: StableMove = await ctx.with_current_state(model, verb, expected)
    await ctx.publish(model)
    return StableOut(model=model, stable=move.version.version, previous_stable=move.previous_stable)


@router.post("/models/{model}/promote", tags=["promote"], summary="Promote a version to stable")
async def promote(model: str, body: PromoteIn, actor: Actor, ctx: Ctx) -> StableOut:
    """``stable`` -> version, the old stable kept as ``previous_stable``, in one transaction.

    Concurrent promotes serialize; one whose ``expected_stable`` is stale gets 409 ABORTED
    with the current state.
    """

    def verb(expected: ExpectedStable) -> StableMove:
        return ctx.store.promote(model, body.version, actor, expected_stable=expected)

    return await _move_stable(ctx, model, body, verb)


@router.post("/models/{model}/rollback", tags=["promote"], summary="Roll stable back")
async def rollback(model: str, actor: Actor, ctx: Ctx, body: RollbackIn | None = None) -> StableOut:
    """``stable`` -> ``previous_stable`` in one transaction; a second rollback is refused."""

    def verb(expected: ExpectedStable) -> StableMove:
        return ctx.store.rollback(model, actor, expected_stable=expected)

    return await _move_stable(ctx, model, body or RollbackIn(), verb)


# -- traffic -------------------------------------------------------------------------------------
@router.get("/models/{model}/traffic", tags=["traffic"], summary="The traffic split")
async def get_traffic(model: str, ctx: Ctx) -> TrafficOut:
    split = await _run(ctx.store.rollouts.get_traffic_split, model)
    return TrafficOut(model=model, weights=split)


@router.put("/models/{model}/traffic", tags=["traffic"], summary="Set the traffic split (canary)")
async def set_traffic(model: str, body: TrafficIn, actor: Actor, ctx: Ctx) -> TrafficOut:
    """Requests without a version or label are spread by these relative weights, over versions
    ("1") or labels ("stable", "canary"); a route key keeps a caller on one version."""
    weights = await _run(ctx.store.rollouts.set_traffic_split, model, body.weights, actor)
    await ctx.publish(model)
    return TrafficOut(model=model, weights=weights)


# -- audit log -----------------------------------------------------------------------------------
def _utc(value: datetime | None) -> datetime | None:
    """Timestamps without a zone are taken as UTC, the catalog's zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@router.get("/events", tags=["audit"], summary="The audit log, oldest first")
async def list_events(
    ctx: Ctx,
    model: str | None = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=10 * DEFAULT_EVENT_LIMIT)] = DEFAULT_EVENT_LIMIT,
) -> EventList:
    events = await _run(ctx.store.list_events, model, _utc(since), _utc(until), limit)
    return EventList(events=[EventOut.from_entity(e) for e in events])
