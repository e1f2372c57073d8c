"""What the gateways observed, in the catalog: their reports in, merged windows and shadow
summaries out (``tfsgate/core/observations.py`` is the contract).

Every gateway process reports about once a second (``gateway/observations.py``): one write
transaction with the seconds it completed and the shadow totals that changed. The rollout guard
reads a version's window, summed over every gateway; the admin API reads a model's shadow
summaries, merged likewise. Seconds older than the horizon are pruned by the reports themselves.
Data, not configuration: no audit events.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from control_plane.catalog.orm import GatewayShadowRow, GatewayVersionSecondRow
from tfsgate.core.observations import (
    ShadowReport,
    ShadowSummary,
    VersionSecond,
    Window,
    merge_window,
)

if TYPE_CHECKING:
    from control_plane.catalog.store import CatalogStore

HORIZON_SECONDS = 600  # the longest window the guard reads from gateway seconds
PRUNE_EVERY_SECONDS = 60.0


class ObservationStore:
    def __init__(self, catalog: CatalogStore, horizon_seconds: int = HORIZON_SECONDS) -> None:
        self._sessions = catalog._sessions  # noqa: SLF001 - same package, one transaction model
        self.horizon = horizon_seconds
        self._pruned_at = 0.0

    # -- gateways write ------------------------------------------------------------------------
    def report(
        self, gateway: str, seconds: Sequence[VersionSecond], shadows: Sequence[ShadowReport]
    ) -> None:
        """One gateway's report; a second reported twice keeps its latest figures."""
        now = time.time()
        with self._sessions.write() as session:
            if seconds:
                rows = [
                    {
                        "gateway": gateway,
                        "model": s.model,
                        "version": s.version,
                        "second": s.second,
                        "requests": s.requests,
                        "errors": s.errors,
                        "histogram": {str(k): v for k, v in s.histogram.items()},
                    }
                    for s in seconds
                ]
                insert = _insert(session, GatewayVersionSecondRow)
                session.execute(
                    insert.on_conflict_do_update(
                        index_elements=["gateway", "model", "version", "second"],
                        set_={
                            "requests": insert.excluded.requests,
                            "errors": insert.excluded.errors,
                            "histogram": insert.excluded.histogram,
                        },
                    ),
                    rows,
                )
            if shadows:
                stamp = datetime.now(UTC)
                insert = _insert(session, GatewayShadowRow)
                session.execute(
                    insert.on_conflict_do_update(
                        index_elements=["gateway", "model", "primary_version", "shadow_version"],
                        set_={"totals": insert.excluded.totals, "updated_at": stamp},
                    ),
                    [
                        {
                            "gateway": gateway,
                            "model": r.model,
                            "primary_version": r.primary_version,
                            "shadow_version": r.shadow_version,
                            "totals": r.summary.totals(),
                            "updated_at": stamp,
                        }
                        for r in shadows
                    ],
                )
            if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
                self._pruned_at = now
                oldest = int(now) - self.horizon
                session.execute(
                    delete(GatewayVersionSecondRow).where(GatewayVersionSecondRow.second < oldest)
                )

    # -- the control plane reads ---------------------------------------------------------------
    def window(self, model: str, version: int, seconds: float) -> Window:
        """The last ``seconds`` (at most the horizon) of one version, over every gateway."""
        oldest = int(time.time()) - min(int(seconds), self.horizon)
        row = GatewayVersionSecondRow
        with self._sessions.read() as session:
            found = session.execute(
                select(row.requests, row.errors, row.histogram).where(
                    row.model == model, row.version == version, row.second >= oldest
                )
            ).all()
        return merge_window(
            (requests, errors, {int(k): v for k, v in histogram.items()})
            for requests, errors, histogram in found
        )

    def shadow_summary(self, model: str) -> list[dict[str, object]]:
        """Every (primary, shadow) pair any gateway saw for ``model``, totals merged."""
        row = GatewayShadowRow
        with self._sessions.read() as session:
            found = session.execute(
                select(row.primary_version, row.shadow_version, row.totals).where(
                    row.model == model
                )
            ).all()
        merged: dict[tuple[int, int], ShadowSummary] = {}
        for primary, shadow, totals in found:
            merged.setdefault((primary, shadow), ShadowSummary()).merge(
                ShadowSummary.from_totals(totals)
            )
        return [
            {"primary_version": p, "shadow_version": s, **summary.as_json()}
            for (p, s), summary in sorted(merged.items())
        ]

    # The admin API's ``ShadowStats`` protocol.
    summary = shadow_summary


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
