"""Desired state: which models are served, which of their versions, with which labels.

Models come from TF Serving's sources (flags, ``--model_config_file``, gRPC reload) and from the
admin API (registered in the catalog); versions from the base path, the version policy and the
operator's pins. The catalog is made to agree: each served model is registered with its base path
and policy, and the config's labels are applied.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from control_plane.catalog.entities import Model, VersionPin
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.reconciler.settings import ACTOR
from control_plane.sources.model_config import ModelSetConfig, ModelSpecConfig
from tfsgate.core.version_policy import VersionPolicy

log = logging.getLogger(__name__)


class ModelSettingsFile:
    """``--model_settings_file``: tfsgate's per-model settings that ModelServerConfig cannot say,
    beside the config file: ``{"models": {"<name>": {"runner": "auto|tensorflow|onnxruntime",
    "response_cache": true}}}``. Re-read when it changes; a broken file is logged and ignored."""

    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None
        self._stamp: tuple[int, int] | None = None
        self._models: dict[str, dict[str, Any]] = {}

    def get(self, model: str) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp != self._stamp:
                self._stamp = stamp
                self._models = self._parse(json.loads(self.path.read_text()))
        except (OSError, ValueError) as exc:
            log.warning("--model_settings_file %s ignored: %s", self.path, exc)
            self._models = {}
        return self._models.get(model, {})

    @staticmethod
    def _parse(data: Any) -> dict[str, dict[str, Any]]:
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict):
            raise ValueError('expected {"models": {name: {...}}}')
        parsed = {}
        for name, entry in models.items():
            if not isinstance(entry, dict) or set(entry) - {"runner", "response_cache"}:
                raise ValueError(f"model {name!r}: only runner and response_cache are settings")
            if "runner" in entry and entry["runner"] not in ("auto", "tensorflow", "onnxruntime"):
                raise ValueError(f"model {name!r}: runner {entry['runner']!r}")
            if "response_cache" in entry and not isinstance(entry["response_cache"], bool):
                raise ValueError(f"model {name!r}: response_cache must be true or false")
            parsed[name] = dict(entry)
        return parsed


def admin_spec(model: Model) -> ModelSpecConfig:
    """The desired-state entry of a model registered through the admin API."""
    return ModelSpecConfig(
        name=model.name,
        base_path=Path(model.base_path),
        platform=model.platform,
        policy=model.policy,
    )


def served_models(models: Iterable[Model], config: ModelSetConfig) -> dict[str, ModelSpecConfig]:
    """Config models plus admin-registered ones (of the catalog's ``models``); the config wins a
    name both define."""
    served = {m.name: admin_spec(m) for m in models if m.admin_registered}
    served.update(config.by_name())
    return served


def wanted_versions(
    policy: VersionPolicy, discovered: Iterable[int], pins: Mapping[int, VersionPin]
) -> frozenset[int]:
    """The policy's choice among versions not pinned UNLOAD, plus those pinned LOAD.

    UNLOAD pins are removed before selection so "latest" falls back to the next version
    instead of leaving the model with nothing to serve.
    """
    on_disk = set(discovered)
    unloaded = {v for v, pin in pins.items() if pin is VersionPin.UNLOAD}
    loaded = {v for v, pin in pins.items() if pin is VersionPin.LOAD}
    return policy.select(on_disk - unloaded) | (loaded & on_disk)


def register_model(
    store: CatalogStore,
    spec: ModelSpecConfig,
    own: Mapping[str, Any],
    default_runner: str | None,
    known: Model | None = None,
) -> Model:
    """The model's catalog row, with the base path and policy the source gives it, and (for a
    model of the flags or config file) the runner and response cache of ``--model_settings_file``
    (``own``) or ``--runner``; an admin-registered model keeps what the admin API set.
    ``known``: its row as just read, if it has one."""
    policy = spec.policy.to_json()
    model = known
    if model is None:
        model, _ = store.get_or_create_model(spec.name, str(spec.base_path), policy, actor=ACTOR)
    runner, cache = None, None
    if not model.admin_registered:
        runner = own.get("runner", default_runner)
        cache = own.get("response_cache")
    if (
        model.base_path != str(spec.base_path)
        or model.policy.to_json() != policy
        or (runner is not None and model.runner.value != runner)
        or (cache is not None and model.response_cache != cache)
    ):
        model = store.update_model(
            spec.name,
            base_path=str(spec.base_path),
            policy=policy,
            actor=ACTOR,
            runner=runner,
            response_cache=cache,
        )
    return model


def apply_labels(store: CatalogStore, spec: ModelSpecConfig, allow_unavailable: bool) -> None:
    """The config's ``version_labels``; a label TF Serving would refuse is logged and skipped."""
    current = store.list_labels(spec.name)
    for label, version in spec.labels.items():
        if current.get(label) == version:
            continue
        try:
            store.set_model_version_label(
                spec.name, label, version, actor=ACTOR, allow_unavailable=allow_unavailable
            )
        except CatalogError as exc:
            log.warning("label %s of %s -> %s: %s", label, spec.name, version, exc)
