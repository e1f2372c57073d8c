"""Publish: build the routing table from the catalog and hand it to the gateways.

A new table after every change (a version's state, labels, traffic, shadow, a rollout); the table is
the contract of ``tfsgate.core.routing_table``. Tables are built one at a time, so one built from an
older catalog read never replaces a newer one (model passes publish concurrently, mid-pass, before
retiring versions). Each goes to the gateway in this process (``sink``, when there is one) and to
the routing feed in the catalog (``CatalogFeed``), which gateways in other processes follow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from control_plane import metrics
from control_plane.catalog.engine import BEGIN_MODE_OPTION, translate_errors
from control_plane.catalog.entities import ModelVersion
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.sources.model_config import ModelSpecConfig
from tfsgate.core import routing_feed
from tfsgate.core.routing_table import (
    ModelRoute,
    RoutingTable,
    ShadowRoute,
    TablePublisher,
    VersionRoute,
)
from tfsgate.core.signatures import signatures_from_json


class FeedWriter(Protocol):
    def write(self, table: RoutingTable) -> int: ...

    def urls_written(self) -> bool: ...


class CatalogFeed:
    """Writes every table to the routing feed with the Triton instances that serve it: one
    transaction, version bumped, NOTIFY on PostgreSQL (``tfsgate/core/routing_feed.py``)."""

    def __init__(self, store: CatalogStore, triton_urls: Callable[[], tuple[str, ...]]) -> None:
        self.store = store
        self.triton_urls = triton_urls  # read at each write: an embedded Triton's ports change
        self._engine = store.engine.execution_options(**{BEGIN_MODE_OPTION: "IMMEDIATE"})
        self._written: tuple[str, ...] | None = None

    def write(self, table: RoutingTable) -> int:
        # Nothing counts as written until this table is: after a failed write the next publish
        # writes its table though it equals the last one handed out.
        self._written = None
        urls = self.triton_urls()
        with translate_errors(), self._engine.begin() as connection:
            version = routing_feed.write(connection, table, urls)
        self._written = urls
        return version

    def urls_written(self) -> bool:
        """Whether the last table handed out was written, with the Triton instances of now (a
        restarted Triton's new ports reach other gateways only through a write)."""
        return self._written == self.triton_urls()


class Publisher:
    def __init__(
        self,
        store: CatalogStore,
        sink: TablePublisher | None,
        served: Callable[[], Mapping[str, ModelSpecConfig]],
        max_batch_size: int,
        feed: FeedWriter | None = None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.feed = feed
        self.served = served  # the models to route, read when a table is built
        self.max_batch_size = max_batch_size
        self._generation = 0
        self._lock = asyncio.Lock()
        self._last: RoutingTable | None = None
        self._routes: dict[tuple[Any, ...], VersionRoute] = {}
        self._routes_used: dict[tuple[Any, ...], VersionRoute] = {}

    async def publish(self, only: str | None = None) -> RoutingTable:
        """Build and hand out a new table. ``only``: the one model whose catalog rows changed (a
        label, promote, rollback, traffic split, shadow): the other models' routes come from the
        last table, so an admin call's cost does not grow with the number of models served (a
        full build reads each model's versions, labels, traffic and shadow)."""
        async with self._lock:
            table, failed = await asyncio.to_thread(self._build_and_feed, only)
            if table is self._last:
                return table
            self._generation = table.generation
            self._last = table
            if self.sink is not None:
                self.sink.publish(table)
            metrics.published(table)
            if failed is not None:
                raise failed  # this process's gateway has the table; the next pass writes it
            return table

    def _build_and_feed(self, only: str | None) -> tuple[RoutingTable, Exception | None]:
        """The table built and written to the feed in one thread hop (in ``tfsgate serve`` each
        hop is a GIL hand-off the gateway's event loop waits on): the last table when nothing a
        gateway routes by changed (a reconcile pass re-run after an index change, an admin call
        repeating the current state), so gateways keep theirs rather than swap in an equal one
        under a new version; with the feed's write failure, if it failed."""
        table = self.build(self._generation + 1, only)
        last = self._last
        fed = self.feed is None or self.feed.urls_written()
        if last is not None and table.models == last.models and fed:
            return last, None
        if self.feed is not None:
            try:
                self.feed.write(table)
            except Exception as exc:  # noqa: BLE001 - raised after the in-process publish
                return table, exc
        return table, None

    def build(self, generation: int, only: str | None = None) -> RoutingTable:
        try:
            served = self.served()
            guarded = self.store.rollouts.guarded_models()
            last = self._last
            if only is None or last is None or not set(served) - {only} <= set(last.models):
                return self._build_models(generation, served, guarded, set(served))
            # The other models' cached version routes stay in use with their routes.
            self._routes_used.update((k, v) for k, v in self._routes.items() if k[0] != only)
            return self._build_models(generation, served, guarded, {only}, last)
        finally:
            # Keep only the routes this table used: the cache never outgrows the catalog.
            self._routes, self._routes_used = self._routes_used, {}

    def _build_models(
        self,
        generation: int,
        served: Mapping[str, ModelSpecConfig],
        guarded: set[str],
        read: set[str],
        last: RoutingTable | None = None,
    ) -> RoutingTable:
        """Models in ``read`` from the catalog, the others as ``last`` had them."""
        models = {}
        for name, spec in served.items():
            if name in read:
                route = self._model_route(name, spec, name in guarded)
            else:
                assert last is not None
                route = last.models.get(name)
                if route is not None and route.guarded != (name in guarded):
                    route = replace(route, guarded=name in guarded)
            if route is not None:
                models[name] = route
        return RoutingTable(generation, models)

    def _model_route(self, name: str, spec: ModelSpecConfig, guarded: bool) -> ModelRoute | None:
        try:
            state = self.store.rollouts.route_state(name)
        except CatalogError:
            return None  # gone from the catalog meanwhile: not routed
        shadow = state.shadow
        return ModelRoute(
            name,
            {v.version: self._version_route(name, v) for v in state.versions},
            state.labels,
            state.traffic,
            shadow=ShadowRoute(shadow.version, shadow.percent, shadow.tolerance)
            if shadow is not None
            else None,
            logging=spec.logging,
            guarded=guarded,
        )

    def _version_route(self, model: str, version: ModelVersion) -> VersionRoute:
        # Publishing after a promote or a weight change rebuilds every route; parsing each
        # version's signatures again was most of that CPU, taken from the requests being served.
        key = (model, version.version, version.updated_at, version.state, version.state_reason)
        cached = self._routes.get(key) or version_route(version, self.max_batch_size)
        self._routes_used[key] = cached
        return cached


def version_route(version: ModelVersion, max_batch_size: int) -> VersionRoute:
    signatures = signatures_from_json(version.signatures)
    return VersionRoute(
        version=version.version,
        state=version.state.value,
        reason=version.state_reason,
        signatures=signatures,
        triton_models=version.triton_models(),
        batched={k: sig.batched and max_batch_size > 0 for k, sig in signatures.items()},
        prefixes=version.tensor_prefixes(),
    )
