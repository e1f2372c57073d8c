"""Warm-up: a version's translated ``tf_serving_warmup_requests`` replayed through Triton before
it is AVAILABLE (TF Serving's SavedModel warm-up), with the count and time recorded on it.

Requests go straight to the version's Triton models, not through the gateway: the version is not
routed yet. The export child translated the records at conversion (``converter/warmup.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from control_plane.catalog.entities import ModelVersion
from control_plane.catalog.store import CatalogStore
from control_plane.converter import warmup
from control_plane.converter.writer import SavedModelConverter
from control_plane.reconciler.settings import ACTOR, ReconcilerSettings
from control_plane.triton.repository import Repository, RepositoryError
from tfsgate.core.signatures import SignatureSpec, signatures_from_json

log = logging.getLogger(__name__)


async def warm_up(
    settings: ReconcilerSettings,
    store: CatalogStore,
    converter: SavedModelConverter,
    repository: Repository,
    model: str,
    version: ModelVersion,
) -> str:
    """Replay the version's warm-up requests; returns why it failed, or ""."""
    if not settings.warmup:
        return ""
    directory = converter.warmup_dir(model, version.version)
    try:
        found = await asyncio.to_thread(warmup.load, directory)
    except (warmup.WarmupError, OSError, ValueError) as exc:
        return f"warm-up: {exc}"
    if found is None:
        return ""
    signatures = signatures_from_json(version.signatures)
    names, prefixes = version.triton_models(), version.tensor_prefixes()
    batching = settings.max_batch_size > 0
    started = time.monotonic()
    for _ in range(max(settings.warmup_iterations, 1)):
        for index, request in enumerate(found.requests):
            spec = signatures.get(request.signature)
            if spec is None:
                return f"warm-up request {index}: no signature {request.signature!r}"
            inputs = triton_inputs(spec, request.inputs, batching)
            if prefix := prefixes.get(request.signature, ""):
                inputs = {prefix + k: v for k, v in inputs.items()}
            try:
                await repository.infer(names[request.signature], version.version, inputs)
            except RepositoryError as exc:
                return f"warm-up request {index} ({request.signature}) failed: {exc}"
    seconds = time.monotonic() - started
    log.info(
        "model %s version %s: %d warm-up records replayed in %.3fs",
        model,
        version.version,
        found.records,
        seconds,
    )
    await asyncio.to_thread(
        store.set_model_version_warmup, model, version.version, found.records, seconds, ACTOR
    )
    return ""


def triton_inputs(
    spec: SignatureSpec, inputs: dict[str, np.ndarray], batching: bool
) -> dict[str, np.ndarray]:
    """TF tensors as Triton carries them (the gateway's rule: a batched tensor with no other
    dimension, or a scalar of an unbatched one, travels with a trailing 1)."""
    batched = spec.batched and batching
    out = {}
    for key, value in inputs.items():
        tensor = spec.inputs.get(key)
        if tensor is not None and tensor.travels_with_unit_dim(batched):
            value = value.reshape(-1, 1) if batched else value.reshape(1)
        out[key] = value
    return out
