"""CatalogStore: the one narrow interface to the model catalog.

Every mutating verb runs in one write transaction that also appends exactly one audit event, so
a change and its record commit together or not at all. Verbs that would change nothing (setting a
label to the version it already has, say) write nothing and record nothing, so retries and
reconciler loops do not flood the log. Every mutation of a model first locks its `models` row
(SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes writers), so
concurrent promotes of one model run one after the other and see each other's results.

Over 400 lines on purpose: it is one class (the interface STYLE.md asks for), and its verbs share
the private transaction, locking and audit helpers at the bottom; splitting the verbs across
modules would split that one transaction discipline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine, Table, bindparam, delete, insert, select, update
from sqlalchemy.engine import URL, Connection, CursorResult, Row
from sqlalchemy.orm import Session

from control_plane.catalog.engine import SessionFactory, create_engine_for
from control_plane.catalog.entities import (
    PREVIOUS_STABLE_LABEL,
    STABLE_LABEL,
    Action,
    Event,
    Expect,
    ExpectedStable,
    Model,
    ModelVersion,
    Runner,
    StableMove,
    VersionPin,
    VersionState,
)
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.orm import (
    EventRow,
    LabelRow,
    ModelRow,
    ModelVersionRow,
    TrafficRow,
    model_entity,
    version_entity,
)
from control_plane.catalog.verb_group import invalid_argument, utc_now
from tfsgate.core.status import Code, ServingError
from tfsgate.core.version_policy import VersionPolicy

if TYPE_CHECKING:
    from control_plane.catalog.observation_store import ObservationStore
    from control_plane.catalog.rollout_store import RolloutStore

DEFAULT_EVENT_LIMIT = 1000
MAX_NAME_LENGTH = 255

# The reads the control plane repeats (each routing table, every reconcile pass, each admin
# answer), built once: a statement built per call is constructed and its cache key computed again
# each time. Plain columns, for ``SessionFactory.snapshot``'s connections and sessions alike.
_MODELS = ModelRow.__table__
_VERSIONS = ModelVersionRow.__table__
_MODEL_BY_NAME = select(_MODELS).where(_MODELS.c.name == bindparam("name"))
# FOR UPDATE serializes all mutations of one model on PostgreSQL; SQLite's compiler drops it
# (BEGIN IMMEDIATE already holds the database write lock).
_MODEL_TO_CHANGE = _MODEL_BY_NAME.with_for_update()
_VERSION = select(_VERSIONS).where(
    _VERSIONS.c.model_id == bindparam("model_id"), _VERSIONS.c.version == bindparam("version")
)
_ALL_MODELS = select(_MODELS).order_by(_MODELS.c.name)
_VERSIONS_OF = (
    select(_VERSIONS)
    .where(_VERSIONS.c.model_id == bindparam("model_id"))
    .order_by(_VERSIONS.c.version)
)
_PINNED = (
    select(_MODELS.c.name, _VERSIONS.c.version, _VERSIONS.c.pin)
    .join(_MODELS, _MODELS.c.id == _VERSIONS.c.model_id)
    .where(_VERSIONS.c.pin.is_not(None))
)
_VERSIONS_IN_STATES = _VERSIONS_OF.where(_VERSIONS.c.state.in_(bindparam("states", expanding=True)))
_LABELS_OF = (
    select(LabelRow.label, LabelRow.version)
    .where(LabelRow.model_id == bindparam("model_id"))
    .order_by(LabelRow.label)
)
_LABELS = cast(Table, LabelRow.__table__)
_SET_LABEL = (
    update(_LABELS)
    .where(_LABELS.c.model_id == bindparam("m"), _LABELS.c.label == bindparam("l"))
    .values(version=bindparam("v"))
)
_ADD_LABEL = insert(_LABELS).values(
    model_id=bindparam("m"), label=bindparam("l"), version=bindparam("v")
)
_DROP_LABEL = delete(_LABELS).where(
    _LABELS.c.model_id == bindparam("m"), _LABELS.c.label == bindparam("l")
)
# ORM-enabled: in a session it flushes the verb's pending rows first, as its add and flush did.
_ADD_EVENT = insert(EventRow)
_TRAFFIC_OF = (
    select(TrafficRow.version, TrafficRow.weight)
    .where(TrafficRow.model_id == bindparam("model_id"))
    .order_by(TrafficRow.version)
)


def _parse_policy(policy: VersionPolicy | Mapping[str, Any] | str) -> VersionPolicy:
    try:
        return VersionPolicy.parse(policy)
    except ServingError as exc:
        raise CatalogError(exc.code, exc.message) from exc


def _require_text(what: str, value: object, max_length: int | None = MAX_NAME_LENGTH) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_argument(f"{what} must be a non-empty string, got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise invalid_argument(f"{what} is longer than {max_length} characters")
    return value


def _require_version_number(value: object) -> int:
    # TF Serving versions are non-negative int64 directory names.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise invalid_argument(f"version must be a non-negative 64-bit integer, got {value!r}")
    return value


def _require_state(value: object) -> VersionState:
    try:
        return VersionState(str(value))
    except ValueError:
        allowed = ", ".join(s.value for s in VersionState)
        raise invalid_argument(
            f"unknown version state {value!r}; expected one of {allowed}"
        ) from None


def _require_json_object(what: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid_argument(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return dict(json.loads(json.dumps(value)))
    except (TypeError, ValueError) as exc:
        raise invalid_argument(f"{what} is not JSON-serializable: {exc}") from exc


def _model_snapshot(row: ModelRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "base_path": row.base_path,
        "policy": row.version_policy,
        "platform": row.platform,
        "admin_registered": bool(row.admin_registered),
        "runner": row.runner,
        "response_cache": bool(row.response_cache),
    }


def _version_snapshot(row: ModelVersionRow) -> dict[str, Any]:
    return {
        "version": row.version,
        "source_path": row.source_path,
        "checksum": row.checksum,
        "state": row.state,
        "state_reason": row.state_reason,
        "pin": row.pin,
        "runners": row.runners,
        "warmup_records": row.warmup_records,
        "warmup_seconds": row.warmup_seconds,
    }


def _require_runner(value: object) -> Runner:
    try:
        return Runner(str(value))
    except ValueError:
        choices = ", ".join(r.value for r in Runner)
        raise invalid_argument(f"runner must be one of {choices}, not {value!r}") from None


def _model_not_found(name: str) -> CatalogError:
    return CatalogError(Code.NOT_FOUND, f"model {name!r} not found")


def _require_pin(value: object) -> VersionPin | None:
    if value is None:
        return None
    try:
        return VersionPin(str(value))
    except ValueError:
        allowed = ", ".join(p.value for p in VersionPin)
        raise invalid_argument(
            f"unknown pin {value!r}; expected one of {allowed} or none"
        ) from None


class CatalogStore:
    """Models, versions, labels, traffic splits and their audit log, behind MLflow-like verbs.

    Returns frozen entities only; raises CatalogError only.
    """

    def __init__(self, engine: Engine) -> None:
        self._sessions = SessionFactory(engine)

    @classmethod
    def from_url(cls, url: str | URL) -> CatalogStore:
        """A store over a new engine for `url` (see create_engine_for)."""
        return cls(create_engine_for(url))

    @cached_property
    def rollouts(self) -> RolloutStore:
        """Traffic over labels, shadows, thresholds, rollouts, predictions and feedback."""
        from control_plane.catalog.rollout_store import RolloutStore

        return RolloutStore(self)

    @cached_property
    def observations(self) -> ObservationStore:
        """What the gateways observed: guard windows and shadow summaries."""
        from control_plane.catalog.observation_store import ObservationStore

        return ObservationStore(self)

    @property
    def engine(self) -> Engine:
        return self._sessions.engine

    def close(self) -> None:
        """Release pooled connections."""
        self._sessions.engine.dispose()

    # ---------------------------------------------------------------- models

    def create_model(
        self,
        name: str,
        base_path: str,
        policy: VersionPolicy | Mapping[str, Any] | str,
        actor: str,
        platform: str = "tensorflow",
        *,
        admin_registered: bool = False,
    ) -> Model:
        """Register a model; ALREADY_EXISTS if the name is taken."""
        _require_text("model name", name)
        _require_text("base_path", base_path, max_length=None)
        _require_text("platform", platform, max_length=64)
        _require_text("actor", actor)
        parsed = _parse_policy(policy)
        with self._sessions.write() as session:
            if self._find_model(session, name) is not None:
                raise CatalogError(Code.ALREADY_EXISTS, f"model {name!r} already exists")
            now = utc_now()
            row = ModelRow(
                name=name,
                base_path=base_path,
                version_policy=parsed.to_json(),
                platform=platform,
                created_at=now,
                updated_at=now,
                admin_registered=admin_registered,
            )
            session.add(row)
            self._record(
                session, actor, Action.CREATE_MODEL, name, None, None, _model_snapshot(row)
            )
            return row.to_entity()

    def get_or_create_model(
        self,
        name: str,
        base_path: str,
        policy: VersionPolicy | Mapping[str, Any] | str,
        actor: str,
        platform: str = "tensorflow",
    ) -> tuple[Model, bool]:
        """The model and whether it was created; an existing model is returned unchanged.

        Reads first: the reconciler calls this every pass, and a write transaction would take
        SQLite's write lock each time. Safe under races: losing the insert race to another
        writer returns the winner's model.
        """
        try:
            return self.get_model(name), False
        except CatalogError as exc:
            if exc.code != Code.NOT_FOUND:
                raise
        try:
            return self.create_model(name, base_path, policy, actor, platform), True
        except CatalogError as exc:
            if exc.code != Code.ALREADY_EXISTS:
                raise
        return self.get_model(name), False

    def get_model(self, name: str) -> Model:
        with self._sessions.snapshot() as db:
            return model_entity(self._model_row(db, name))

    def list_models(self) -> list[Model]:
        with self._sessions.snapshot() as db:
            return [model_entity(row) for row in db.execute(_ALL_MODELS)]

    def update_model(
        self,
        name: str,
        *,
        actor: str,
        base_path: str | None = None,
        policy: VersionPolicy | Mapping[str, Any] | str | None = None,
        admin_registered: bool | None = None,
        runner: Runner | str | None = None,
        response_cache: bool | None = None,
    ) -> Model:
        """Change base path, version policy, admin registration, runner setting and/or response
        cache; None keeps a field."""
        _require_text("actor", actor)
        new_runner = None if runner is None else _require_runner(runner)
        if base_path is not None:
            _require_text("base_path", base_path, max_length=None)
        new_policy = None if policy is None else _parse_policy(policy).to_json()
        with self._sessions.write() as session:
            row = self._require_model(session, name, lock=True)
            before = _model_snapshot(row)
            row.base_path = base_path if base_path is not None else row.base_path
            row.version_policy = new_policy if new_policy is not None else row.version_policy
            if admin_registered is not None:
                row.admin_registered = admin_registered
            if new_runner is not None:
                row.runner = new_runner.value
            if response_cache is not None:
                row.response_cache = bool(response_cache)
            after = _model_snapshot(row)
            if after != before:
                row.updated_at = utc_now()
                self._record(session, actor, Action.UPDATE_MODEL, name, None, before, after)
            return row.to_entity()

    def delete_model(self, name: str, actor: str) -> None:
        """Delete a model with its versions, labels and traffic; its events remain."""
        _require_text("actor", actor)
        with self._sessions.write() as session:
            row = self._require_model(session, name, lock=True)
            before = _model_snapshot(row)
            before["versions"] = list(
                session.scalars(
                    select(ModelVersionRow.version).where(ModelVersionRow.model_id == row.id)
                )
            )
            before["labels"] = self._labels(session, row.id)
            session.delete(row)
            self._record(session, actor, Action.DELETE_MODEL, name, None, before, None)

    # ---------------------------------------------------------------- versions

    def create_model_version(
        self,
        model: str,
        version: int,
        source_path: str,
        checksum: str,
        signatures: Mapping[str, Any],
        actor: str,
        *,
        state: VersionState | str = VersionState.START,
        state_reason: str = "",
        pin: VersionPin | str | None = None,
        runners: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Add a version (in state START by default); ALREADY_EXISTS if it is present.

        `state`, `state_reason` and `pin` let one transaction (one audit event) record a version
        that failed conversion, or one an operator asked to load, without a second event.
        """
        _require_version_number(version)
        initial_state = _require_state(state)
        initial_pin = _require_pin(pin)
        if not isinstance(state_reason, str):
            raise invalid_argument("state_reason must be a string")
        _require_text("source_path", source_path, max_length=None)
        if not isinstance(checksum, str) or len(checksum) > 128:
            raise invalid_argument("checksum must be a string of at most 128 characters")
        sigs = _require_json_object("signatures", signatures)
        evidence = _require_json_object("runners", runners or {})
        _require_text("actor", actor)
        with self._sessions.write() as session:
            model_row = self._require_model(session, model, lock=True)
            if session.get(ModelVersionRow, (model_row.id, version)) is not None:
                raise CatalogError(
                    Code.ALREADY_EXISTS, f"model {model!r} version {version} already exists"
                )
            now = utc_now()
            row = ModelVersionRow(
                model=model_row,
                version=version,
                source_path=source_path,
                checksum=checksum,
                signatures=sigs,
                state=initial_state.value,
                state_reason=state_reason,
                created_at=now,
                updated_at=now,
                pin=None if initial_pin is None else initial_pin.value,
                runners=evidence,
            )
            session.add(row)
            after = _version_snapshot(row)
            self._record(session, actor, Action.CREATE_MODEL_VERSION, model, version, None, after)
            return row.to_entity()

    def get_model_version(self, model: str, version: int) -> ModelVersion:
        with self._sessions.read() as session:
            model_row = self._require_model(session, model)
            return self._require_version(session, model_row, version).to_entity()

    def list_model_versions(
        self, model: str, states: Iterable[VersionState | str] | None = None
    ) -> list[ModelVersion]:
        """A model's versions in ascending order, optionally only those in `states`."""
        wanted = None if states is None else [_require_state(s).value for s in states]
        with self._sessions.snapshot() as db:
            return self._versions(db, self._model_row(db, model), wanted)

    def list_pins(self) -> dict[str, dict[int, VersionPin]]:
        """Every model's pinned versions (models without pins are absent), in one read."""
        pins: dict[str, dict[int, VersionPin]] = {}
        with self._sessions.snapshot() as db:
            for name, version, pin in db.execute(_PINNED):
                pins.setdefault(name, {})[version] = VersionPin(pin)
        return pins

    def set_model_version_state(
        self,
        model: str,
        version: int,
        state: VersionState | str,
        reason: str = "",
        *,
        actor: str,
    ) -> ModelVersion:
        """Record a serving state (written back by the reconciler) and why."""
        new_state = _require_state(state)
        if not isinstance(reason, str):
            raise invalid_argument("reason must be a string")
        _require_text("actor", actor)
        with self._sessions.write() as session:
            model_row = self._require_model(session, model, lock=True)
            row = self._require_version(session, model_row, version)
            before = _version_snapshot(row)
            row.state, row.state_reason = new_state.value, reason
            after = _version_snapshot(row)
            if after != before:
                row.updated_at = utc_now()
                action = Action.SET_MODEL_VERSION_STATE
                self._record(session, actor, action, model, version, before, after)
            return row.to_entity()

    def set_model_version_pin(
        self, model: str, version: int, pin: VersionPin | str | None, actor: str
    ) -> ModelVersion:
        """Pin a version loaded or unloaded regardless of the policy; None follows the policy.

        Unloading a version that a label or a positive traffic weight points at is refused
        (FAILED_PRECONDITION): move the label or the traffic first, so requests never route to
        a version that is being taken away.
        """
        _require_version_number(version)
        new_pin = _require_pin(pin)
        _require_text("actor", actor)
        with self._sessions.write() as session:
            model_row = self._require_model(session, model, lock=True)
            row = self._require_version(session, model_row, version)
            if new_pin is VersionPin.UNLOAD:
                self._check_unreferenced(session, model_row, version)
            before = _version_snapshot(row)
            row.pin = None if new_pin is None else new_pin.value
            after = _version_snapshot(row)
            if after != before:
                row.updated_at = utc_now()
                action = Action.SET_MODEL_VERSION_PIN
                self._record(session, actor, action, model, version, before, after)
            return row.to_entity()

    def set_model_version_runners(
        self, model: str, version: int, runners: Mapping[str, Any], actor: str
    ) -> ModelVersion:
        """Record which runner serves each signature of a (re-)converted version, and why."""
        evidence = _require_json_object("runners", runners)
        _require_text("actor", actor)
        with self._sessions.write() as session:
            model_row = self._require_model(session, model, lock=True)
            row = self._require_version(session, model_row, version)
            before = _version_snapshot(row)
            row.runners = evidence
            after = _version_snapshot(row)
            if after != before:
                row.updated_at = utc_now()
                self._record(
                    session, actor, Action.SET_MODEL_VERSION_RUNNERS, model, version, before, after
                )
            return row.to_entity()

    def set_model_version_warmup(
        self, model: str, version: int, records: int, seconds: float, actor: str
    ) -> ModelVersion:
        """Record the warm-up replay done before the version became AVAILABLE."""
        if not isinstance(records, int) or records < 0:
            raise invalid_argument("records must be a non-negative integer")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise invalid_argument("seconds must be a non-negative number")
        _require_text("actor", actor)
        with self._sessions.write() as session:
            model_row = self._require_model(session, model, lock=True)
            row = self._require_version(session, model_row, version)
            before = _version_snapshot(row)
            row.warmup_records = records
            row.warmup_seconds = float(seconds)
            row.updated_at = utc_now()
            self._record(
                session,
                actor,
                Action.SET_MODEL_VERSION_WARMUP,
                model,
                version,
                before,
                _version_snapshot(row),
            )
            return row.to_entity()

    def _check_unreferenced(self, session: Session, model_row: ModelRow, version: int) -> None:
        labels = sorted(k for k, v in self._labels(session, model_row.id).items() if v == version)
        weight = self._traffic(session, model_row.id).get(version, 0.0)
        if labels or weight > 0:
            uses = [f"label {label!r}" for label in labels]
            uses += [f"traffic weight {weight}"] if weight > 0 else []
            raise CatalogError(
                Code.FAILED_PRECONDITION,
                f"model {model_row.name!r} version {version} is in use ({', '.join(uses)}); "
                "move it away before unloading",
            )

    # ---------------------------------------------------------------- labels

    def set_model_version_label(
        self,
        model: str,
        label: str,
        version: int,
        actor: str,
        allow_unavailable: bool = False,
    ) -> None:
        """Point `label` at `version` (one upsert).

        TF Serving's rule: a label may only point at an AVAILABLE version; with
        allow_unavailable (--allow_version_labels_for_unavailable_models) a NEW label may point
        at any existing version, but moving an existing label still needs AVAILABLE, so a label
        in use never flips to a version that cannot serve. FAILED_PRECONDITION otherwise.
        """
        _require_text("label", label)
        _require_version_number(version)
        _require_text("actor", actor)
        with self._sessions.write() as session:
            model_row = self._require_model(session, model, lock=True)
            target = self._require_version(session, model_row, version)
            existing = session.get(LabelRow, (model_row.id, label))
            if existing is not None and existing.version == version:
                return
            if target.state != VersionState.AVAILABLE and (
                existing is not None or not allow_unavailable
            ):
                raise self._label_precondition(model, label, target, existing is not None)
            before = None if existing is None else {"label": label, "version": existing.version}
            self._put_label(session, model_row, label, version)
            after = {"label": label, "version": version}
            action = Action.SET_MODEL_VERSION_LABEL
            self._record(session, actor, action, model, version, before, after)

    def delete_model_version_label(self, model: str, label: str, actor: str) -> None:
        """Remove a label; NOT_FOUND if the model has no such label."""
        _require_text("actor", actor)
        with self._sessions.write() as session:
            model_row = self._require_model(session, model, lock=True)
            existing = session.get(LabelRow, (model_row.id, label))
            if existing is None:
                raise CatalogError(Code.NOT_FOUND, f"model {model!r} has no label {label!r}")
            before = {"label": label, "version": existing.version}
            session.delete(existing)
            action = Action.DELETE_MODEL_VERSION_LABEL
            self._record(session, actor, action, model, existing.version, before, None)

    def get_model_version_by_label(self, model: str, label: str) -> ModelVersion:
        with self._sessions.read() as session:
            model_row = self._require_model(session, model)
            existing = session.get(LabelRow, (model_row.id, label))
            if existing is None:
                raise CatalogError(Code.NOT_FOUND, f"model {model!r} has no label {label!r}")
            return self._require_version(session, model_row, existing.version).to_entity()

    def list_labels(self, model: str) -> dict[str, int]:
        with self._sessions.snapshot() as db:
            return self._labels(db, self._model_row(db, model).id)

    # ---------------------------------------------------------------- promote / rollback

    def promote(
        self,
        model: str,
        version: int,
        actor: str,
        *,
        expected_stable: ExpectedStable = Expect.ANY,
    ) -> StableMove:
        """Make `version` the `stable` label, keeping the old one as `previous_stable`.

        `expected_stable` (a version, or None for "no stable yet") turns on optimistic
        concurrency: if stable is not what the caller last saw, ABORTED with the current value.
        Promoting the current stable again is a no-op.
        """
        _require_version_number(version)
        _require_text("actor", actor)
        with self._sessions.write_statements() as db:
            model_row = self._model_row(db, model, lock=True)
            target = self._version_row(db, model_row, version)
            before = self._stable_pair(db, model_row.id)
            self._check_expected(model, before[STABLE_LABEL], expected_stable)
            if before[STABLE_LABEL] == version:
                return StableMove(version_entity(model, target), before[PREVIOUS_STABLE_LABEL])
            if target.state != VersionState.AVAILABLE:
                raise self._label_precondition(model, STABLE_LABEL, target, True)
            self._move_stable(db, model_row, version, previous=before[STABLE_LABEL])
            after = {STABLE_LABEL: version, PREVIOUS_STABLE_LABEL: before[STABLE_LABEL]}
            self._record(db, actor, Action.PROMOTE, model, version, before, after)
            return StableMove(version_entity(model, target), before[STABLE_LABEL])

    def rollback(
        self, model: str, actor: str, *, expected_stable: ExpectedStable = Expect.ANY
    ) -> StableMove:
        """Point `stable` back at `previous_stable` in one transaction and forget the latter.

        A second rollback therefore fails (FAILED_PRECONDITION) instead of flip-flopping; the
        audit log keeps the full history.
        """
        _require_text("actor", actor)
        with self._sessions.write_statements() as db:
            model_row = self._model_row(db, model, lock=True)
            before = self._stable_pair(db, model_row.id)
            self._check_expected(model, before[STABLE_LABEL], expected_stable)
            previous = before[PREVIOUS_STABLE_LABEL]
            if previous is None:
                raise CatalogError(
                    Code.FAILED_PRECONDITION,
                    f"model {model!r} has no previous stable version to roll back to "
                    f"(stable is {before[STABLE_LABEL]})",
                )
            target = self._version_row(db, model_row, previous)
            if target.state != VersionState.AVAILABLE:
                raise self._label_precondition(model, STABLE_LABEL, target, True)
            self._move_stable(db, model_row, previous, previous=None)
            after = {STABLE_LABEL: previous, PREVIOUS_STABLE_LABEL: None}
            self._record(db, actor, Action.ROLLBACK, model, previous, before, after)
            return StableMove(version_entity(model, target), None)

    # ---------------------------------------------------------------- traffic

    def get_traffic(self, model: str) -> dict[int, float]:
        """The version weights of the traffic split (``store.rollouts`` sets it, with labels)."""
        with self._sessions.snapshot() as db:
            return self._traffic(db, self._model_row(db, model).id)

    # ---------------------------------------------------------------- events

    def list_events(
        self,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_EVENT_LIMIT,
    ) -> list[Event]:
        """Audit events in the order they happened; `since` inclusive, `until` exclusive.

        With more than `limit` matches, the oldest `limit` are returned; page on with `since`.
        """
        if not isinstance(limit, int) or limit < 1:
            raise invalid_argument(f"limit must be a positive integer, got {limit!r}")
        query = select(EventRow).order_by(EventRow.id).limit(limit)
        if model is not None:
            query = query.where(EventRow.model == model)
        if since is not None:
            query = query.where(EventRow.time >= since)
        if until is not None:
            query = query.where(EventRow.time < until)
        with self._sessions.read() as session:
            return [row.to_entity() for row in session.scalars(query)]

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _find_model(session: Session, name: str, lock: bool = False) -> ModelRow | None:
        query = select(ModelRow).where(ModelRow.name == name)
        if lock:
            # FOR UPDATE serializes all mutations of one model on PostgreSQL; SQLite's
            # compiler drops it (BEGIN IMMEDIATE already holds the database write lock).
            query = query.with_for_update()
        return session.scalars(query).one_or_none()

    def _require_model(self, session: Session, name: str, lock: bool = False) -> ModelRow:
        row = self._find_model(session, name, lock=lock)
        if row is None:
            raise _model_not_found(name)
        return row

    @staticmethod
    def _model_row(db: Connection, name: str, lock: bool = False) -> Row[Any]:
        """The model's columns, for reads and for the verbs made of statements alone
        (``write_statements``; ``lock`` as ``_require_model``'s, which loads the ORM row the other
        writes change)."""
        row = db.execute(_MODEL_TO_CHANGE if lock else _MODEL_BY_NAME, {"name": name}).first()
        if row is None:
            raise _model_not_found(name)
        return row

    @staticmethod
    def _require_version(session: Session, model_row: ModelRow, version: int) -> ModelVersionRow:
        row = session.get(ModelVersionRow, (model_row.id, version))
        if row is None:
            raise CatalogError(Code.NOT_FOUND, f"model {model_row.name!r} has no version {version}")
        return row

    @staticmethod
    def _version_row(db: Connection, model_row: Row[Any], version: int) -> Row[Any]:
        """``_require_version`` on a plain connection."""
        row = db.execute(_VERSION, {"model_id": model_row.id, "version": version}).first()
        if row is None:
            raise CatalogError(Code.NOT_FOUND, f"model {model_row.name!r} has no version {version}")
        return row

    @staticmethod
    def _versions(
        db: Connection, model_row: Row[Any], states: list[str] | None = None
    ) -> list[ModelVersion]:
        if states is None:
            rows = db.execute(_VERSIONS_OF, {"model_id": model_row.id})
        else:
            rows = db.execute(_VERSIONS_IN_STATES, {"model_id": model_row.id, "states": states})
        return [version_entity(model_row.name, row) for row in rows]

    @staticmethod
    def _labels(db: Connection | Session, model_id: int) -> dict[str, int]:
        rows = db.execute(_LABELS_OF, {"model_id": model_id})
        return {label: version for label, version in rows}

    @staticmethod
    def _traffic(db: Connection | Session, model_id: int) -> dict[int, float]:
        rows = db.execute(_TRAFFIC_OF, {"model_id": model_id})
        return {version: weight for version, weight in rows}

    def _stable_pair(self, db: Connection, model_id: int) -> dict[str, int | None]:
        labels = self._labels(db, model_id)
        return {
            STABLE_LABEL: labels.get(STABLE_LABEL),
            PREVIOUS_STABLE_LABEL: labels.get(PREVIOUS_STABLE_LABEL),
        }

    @staticmethod
    def _check_expected(model: str, current: int | None, expected: ExpectedStable) -> None:
        if expected is Expect.ANY or expected == current:
            return
        raise CatalogError(
            Code.ABORTED,
            f"model {model!r}: stable is {current}, expected {expected}; "
            "another change won the race, reload and retry",
        )

    def _move_stable(
        self, db: Session | Connection, model_row: Any, version: int, previous: int | None
    ) -> None:
        self._put_label(db, model_row, STABLE_LABEL, version)
        if previous is None:
            db.execute(_DROP_LABEL, {"m": model_row.id, "l": PREVIOUS_STABLE_LABEL})
        else:
            self._put_label(db, model_row, PREVIOUS_STABLE_LABEL, previous)

    @staticmethod
    def _put_label(db: Session | Connection, model_row: Any, label: str, version: int) -> None:
        """Upsert by primary key: UPDATE, then INSERT if no row was there (the model's row lock,
        taken first, keeps other writers out meanwhile). ``merge`` read the row first and went
        through the unit of work: a third of a promote's CPU, measured."""
        params = {"m": model_row.id, "l": label, "v": version}
        if cast(CursorResult[Any], db.execute(_SET_LABEL, params)).rowcount == 0:
            db.execute(_ADD_LABEL, params)

    @staticmethod
    def _label_precondition(model: str, label: str, target: Any, moving: bool) -> CatalogError:
        what = "move existing label" if moving else "set label"
        return CatalogError(
            Code.FAILED_PRECONDITION,
            f"cannot {what} {label!r} of model {model!r} to version {target.version}: it is "
            f"{target.state}, not AVAILABLE",
        )

    @staticmethod
    def _record(
        db: Session | Connection,
        actor: str,
        action: Action,
        model: str,
        version: int | None,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """Append the transaction's one audit event; it commits or rolls back with the change.
        One INSERT statement, on a session or a plain connection alike (an added row waited for
        the session's flush, its unit of work)."""
        db.execute(
            _ADD_EVENT,
            {
                "time": utc_now(),
                "actor": actor,
                "action": action.value,
                "model": model,
                "version": version,
                "before": before,
                "after": after,
            },
        )
