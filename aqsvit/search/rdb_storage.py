"""SQLite and PostgreSQL storages whose per-trial cost does not grow with the study or the workers.

Optuna wraps every RDBStorage in its ``_CachedStorage``: finished trials are read once, but per
trial of ``ask`` + ``tell`` it still

- refreshes the whole study to look for WAITING trials (``ask``), and each refresh re-reads every
  live trial through the ORM: six queries in a transaction, an object per row, two JSON parses per
  parameter;
- reads the running trial whole four times (``Trial()``, the objective's attrs, ``tell`` twice);
- writes through ORM transactions that read before they write: a new trial is an insert, a count
  and an update; an attribute a read of the trial and an upsert; ``tell`` a locked read, a read
  and a write per objective value and an update.

Two classes do the same for less:

- :class:`CoreRDBStorage`, the RDB backend: its trial reads run SQLAlchemy Core selects in
  autocommit (tuples, not ORM objects; no BEGIN/COMMIT round trips), parse each distribution once,
  and read a live trial's parameters again only when their count changed; its writes of every
  trial are Core statements whose checks (the trial is live, the study exists) are part of the
  write: an attribute is one conditional upsert, ``tell`` one conditional update and one upsert;
- :class:`OwnedTrialsCache`, the cache over it: the trials this process runs are known from its own
  writes (every write to them goes through it), so their reads check only the one field another
  process may change, the state (a worker that takes this one for dead fails its trial), in one
  indexed row, and the read just after creating one and reads of their attributes none; a read of
  WAITING trials alone is one query while there are none.

On servers (PostgreSQL, MySQL) a pooled connection is pinged before use only after it sat idle
(:func:`ping_when_idle`), not at each of a trial's dozen checkouts as ``pool_pre_ping`` does.

Both leave and return what Optuna's own storage does (tests/search/test_rdb_storage.py compares
them on SQLite and PostgreSQL after every kind of write, and the refusals of writes to finished
and missing trials); they lean on Optuna's internals like :mod:`~aqsvit.search.trial_reads`,
pinned in pyproject.toml. Other dialects (MySQL) get Optuna's writes.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from optuna.distributions import BaseDistribution, check_distribution_compatibility, distribution_to_json, \
    json_to_distribution
from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState
from optuna.exceptions import StorageInternalError
from sqlalchemy import Connection, Engine, event, exists, func, insert, literal, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError

_STUDIES = models.StudyModel.__table__
_TRIALS = models.TrialModel.__table__
_PARAMS = models.TrialParamModel.__table__
_VALUES = models.TrialValueModel.__table__
_USER_ATTRS = models.TrialUserAttributeModel.__table__
_SYSTEM_ATTRS = models.TrialSystemAttributeModel.__table__
_INTERMEDIATE = models.TrialIntermediateValueModel.__table__
_LIVE = (TrialState.RUNNING, TrialState.WAITING)  # the states a trial may still be written in
_UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}  # dialects with INSERT ... ON CONFLICT
IDLE_PING_S = 1.0  # a pooled connection idle this long is pinged before use (see ping_when_idle)
_IDLE_SINCE = "aqsvit_idle_since"  # the pool record's note of when its connection was checked in
MAX_LISTED_IDS = 500  # a refresh names up to this many trials by id in its reads of their rows (SQLAlchemy's selectin batch)


@lru_cache(maxsize=4096)
def _distribution(text: str) -> BaseDistribution:
    """A stored distribution, parsed once per process (a study holds a handful of distinct ones)."""
    return json_to_distribution(text)


def _local(utc: datetime | None) -> datetime | None:
    """A stored naive-UTC time as the naive local time Optuna's RDB storage hands out."""
    return None if utc is None else utc.replace(tzinfo=timezone.utc).astimezone().replace(tzinfo=None)


def _stored(value: Any) -> Any:
    """``value`` as it reads back from a JSON column (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))


# trial_params rows from three arrays, written only while the trial is live (states stored by name)
_INSERT_PARAMS = text(
    f"INSERT INTO {_PARAMS.name} (trial_id, param_name, param_value, distribution_json) "
    "SELECT :trial_id, p.name, p.value, p.distribution "
    "FROM unnest(CAST(:names AS text[]), CAST(:values AS double precision[]), CAST(:distributions AS text[])) "
    "AS p(name, value, distribution) "
    f"WHERE EXISTS (SELECT 1 FROM {_TRIALS.name} WHERE trial_id = :trial_id AND CAST(state AS text) = ANY(:live)) "
    "RETURNING trial_id")


def ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping`` for connections idle ``IDLE_PING_S`` or longer: one that does
    not answer is replaced before use (a database restarted while a worker evaluated). A ping on every
    checkout is a round trip on each of a trial's dozen statements; a connection used a moment ago
    fails only as any statement in flight during a restart fails. SQLite files need no ping."""
    if engine.dialect.name == "sqlite":
        return

    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces the connection and checks out again
            raise DisconnectionError("a pooled connection no longer answers") from exc


class CoreRDBStorage(RDBStorage):
    """An RDBStorage whose trial reads (``get_trial``, the cache's refresh) return the same
    FrozenTrials from Core selects in autocommit: tuples instead of ORM objects, no transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ping_when_idle(self.engine)
        self._known_params: dict[int, tuple[dict, dict]] = {}  # live trial id -> its params, distributions
        self._known_lock = threading.Lock()

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        del state["_known_lock"]
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)  # a new engine
        ping_when_idle(self.engine)
        self._known_params, self._known_lock = {}, threading.Lock()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection in autocommit: a statement is one round trip, with no BEGIN and COMMIT
        around it, and sees what was committed before it, as each select of Optuna's (READ
        COMMITTED) sessions does; a write statement commits alone. Errors are Optuna's, as its
        sessions raise them."""
        try:
            with self.engine.connect() as connection:
                yield connection.execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise StorageInternalError(f"A statement on the study failed: {type(exc).__name__}") from exc

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in one transaction, committed at the end (rolled back on an error)."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StorageInternalError(f"A write to the study failed: {type(exc).__name__}") from exc

    def knows(self, trial: FrozenTrial) -> None:
        """Take the parameters of live ``trial`` as read (it was just created)."""
        if not trial.state.is_finished():
            with self._known_lock:
                self._known_params[trial._trial_id] = (dict(trial.params), dict(trial.distributions))

    def wrote_params(self, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]) -> None:
        """Add ``params`` (name -> (internal value, distribution)), just written to live trial
        ``trial_id``, to what is known of it: a write of them succeeded, so the trial holds them."""
        with self._known_lock:
            known = self._known_params.get(trial_id)
            if known is not None:
                for name, (value, distribution) in params.items():
                    known[0].setdefault(name, distribution.to_external_repr(float(value)))
                    known[1].setdefault(name, distribution)

    # --- the writes of every trial: Core statements, as few round trips as their checks allow -----
    @property
    def _upsert(self):
        """This dialect's INSERT with ON CONFLICT (None: Optuna's writes are used)."""
        return _UPSERTS.get(self.engine.name)

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        """A new RUNNING trial, numbered under a lock of the study's row as Optuna's is, in one
        insert (Optuna: the insert, a count of the study's trials and an update of the number); a
        template is Optuna's."""
        if template_trial is not None or self._upsert is None:
            return super()._create_new_trial(study_id, template_trial)
        started = datetime.now(timezone.utc).replace(tzinfo=None)  # stored naive UTC, as Optuna's model does
        columns = ("number", "study_id", "state", "datetime_start")
        # trials are numbered densely under the study's lock (here and in Optuna's own insert), so the
        # next number is the newest trial's + 1: one row of the primary key's index, not a count of all
        newest = select(_TRIALS.c.number).where(_TRIALS.c.study_id == study_id) \
            .order_by(_TRIALS.c.trial_id.desc()).limit(1).scalar_subquery()
        new = select(func.coalesce(newest + 1, 0), *(literal(v, _TRIALS.c[c].type) for c, v in zip(
            columns[1:], (study_id, TrialState.RUNNING, started))))
        with self.transaction() as connection:
            if connection.execute(select(_STUDIES.c.study_id).where(_STUDIES.c.study_id == study_id)
                                  .with_for_update()).first() is None:
                raise KeyError(models.NOT_FOUND_MSG)
            row = connection.execute(insert(_TRIALS).from_select(columns, new)
                                     .returning(_TRIALS.c.trial_id, _TRIALS.c.number)).one()
        return FrozenTrial(number=row.number, state=TrialState.RUNNING, value=None, values=None,
                           datetime_start=_local(started), datetime_complete=None, params={}, distributions={},
                           user_attrs={}, system_attrs={}, intermediate_values={}, trial_id=row.trial_id)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if self._upsert is None:
            return super().set_trial_system_attr(trial_id, key, value)
        self._set_attr(_SYSTEM_ATTRS, trial_id, key, value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if self._upsert is None:
            return super().set_trial_user_attr(trial_id, key, value)
        self._set_attr(_USER_ATTRS, trial_id, key, value)

    def _set_attr(self, table, trial_id: int, key: str, value: Any) -> None:
        """Optuna's upsert of an attribute, on the condition that the trial is live: one statement
        in autocommit (Optuna: a transaction that reads the trial, then upserts)."""
        row = select(*(literal(v, table.c[c].type) for c, v in (("trial_id", trial_id), ("key", key),
                                                                   ("value_json", json.dumps(value))))) \
            .where(exists().where(_TRIALS.c.trial_id == trial_id, _TRIALS.c.state.in_(_LIVE)))
        statement = self._upsert(table).from_select(["trial_id", "key", "value_json"], row)
        statement = statement.on_conflict_do_update(index_elements=[table.c.trial_id, table.c.key],
                                                    set_={"value_json": statement.excluded.value_json})
        with self.reading() as connection:
            if connection.execute(statement.returning(table.c.trial_id)).first() is None:
                self._refuse(connection, trial_id)

    def insert_params(self, trial_id: int, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Insert parameter ``rows`` (trial_params columns) of trial ``trial_id`` on the condition
        that it is live, as one statement in autocommit whose columns travel as three arrays (one
        plan for any number of rows); refused as Optuna refuses. PostgreSQL only: False elsewhere,
        where nothing was written."""
        if self.engine.name != "postgresql":
            return False
        if rows:
            with self.reading() as connection:
                inserted = connection.execute(_INSERT_PARAMS, {
                    "trial_id": trial_id, "live": [state.name for state in _LIVE],
                    "names": [row["param_name"] for row in rows], "values": [row["param_value"] for row in rows],
                    "distributions": [row["distribution_json"] for row in rows]}).first()
                if inserted is None:
                    self._refuse(connection, trial_id)
        return True

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        """Finishing a trial is one conditional update and one upsert of its values, in one
        transaction (Optuna: a locked read, a read and a write per value, the update); anything
        else (a WAITING trial popped to RUNNING) is Optuna's."""
        if not state.is_finished() or self._upsert is None:
            return super().set_trial_state_values(trial_id, state, values)
        with self.transaction() as connection:
            finished = connection.execute(
                _TRIALS.update().where(_TRIALS.c.trial_id == trial_id, _TRIALS.c.state.in_(_LIVE))
                .values(state=state, datetime_complete=datetime.now(timezone.utc).replace(tzinfo=None)))
            if finished.rowcount == 0:
                self._refuse(connection, trial_id)
            if values:
                rows = []
                for objective, value in enumerate(values):
                    stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                    rows.append({"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind})
                statement = self._upsert(_VALUES).values(rows)
                connection.execute(statement.on_conflict_do_update(
                    index_elements=[_VALUES.c.trial_id, _VALUES.c.objective],
                    set_={"value": statement.excluded.value, "value_type": statement.excluded.value_type}))
        return True

    def _refuse(self, connection: Connection, trial_id: int) -> None:
        """Raise what Optuna raises for a write that found trial ``trial_id`` missing or finished."""
        state = connection.execute(select(_TRIALS.c.state).where(_TRIALS.c.trial_id == trial_id)).scalar()
        if state is None:
            raise KeyError(models.NOT_FOUND_MSG)
        self.check_trial_is_updatable(trial_id, state)
        raise StorageInternalError(f"trial {trial_id} ({state.name}) was not written")  # live: cannot happen

    # --- reads -----------------------------------------------------------------------------------
    def get_trial(self, trial_id: int) -> FrozenTrial:
        trials = self._read(_TRIALS.c.trial_id == trial_id)
        if not trials:
            raise KeyError(models.NOT_FOUND_MSG)  # Optuna's words
        return trials[0]

    def _get_trials(self, study_id: int, states: Container[TrialState] | None, included_trial_ids: set[int],
                    trial_id_greater_than: int) -> list[FrozenTrial]:
        where = [_TRIALS.c.study_id == study_id]
        if states is not None:
            assert isinstance(states, Iterable)
            where.append(_TRIALS.c.state.in_(list(states)))
        included = [i for i in included_trial_ids if i <= trial_id_greater_than]
        if trial_id_greater_than > -1:
            newer = _TRIALS.c.trial_id > trial_id_greater_than
            where.append(or_(_TRIALS.c.trial_id.in_(included), newer) if included else newer)
        return self._read(*where, study_id=study_id)

    def _read(self, *where, study_id: int | None = None) -> list[FrozenTrial]:
        """The trials matching ``where``, in trial id order; with ``study_id``, a KeyError when that
        study does not exist (as Optuna's reads raise).

        A trial's parameters are only ever added (one row per name, never changed), so the
        parameters of a live trial read before are read again only when its count of them changed:
        the bulk of a refresh (96 rows per live trial here) is then one count per trial."""
        with self.reading() as session:
            rows = session.execute(select(_TRIALS.c.trial_id, _TRIALS.c.number, _TRIALS.c.state,
                                          _TRIALS.c.datetime_start, _TRIALS.c.datetime_complete)
                                   .where(*where).order_by(_TRIALS.c.trial_id)).all()
            if not rows:
                if study_id is not None and session.execute(select(_STUDIES.c.study_id).where(
                        _STUDIES.c.study_id == study_id)).first() is None:  # (a trial row names an existing study)
                    raise KeyError(models.NOT_FOUND_MSG)
                return []
            fields: dict[int, dict[str, Any]] = {
                row.trial_id: {"params": {}, "distributions": {}, "values": {}, "user_attrs": {},
                               "system_attrs": {}, "intermediate_values": {}} for row in rows}
            with self._known_lock:
                known = {row.trial_id: self._known_params[row.trial_id] for row in rows
                         if row.trial_id in self._known_params}
            if known:  # (an index-only count)
                counts = dict(session.execute(select(_PARAMS.c.trial_id, func.count())
                                              .where(_PARAMS.c.trial_id.in_(list(known)))
                                              .group_by(_PARAMS.c.trial_id)).all())
                for trial_id, (params, distributions) in list(known.items()):
                    if len(params) == counts.get(trial_id, 0):
                        fields[trial_id]["params"], fields[trial_id]["distributions"] = dict(params), dict(distributions)
                    else:
                        del known[trial_id]
            unread = [row.trial_id for row in rows if row.trial_id not in known]

            def related(table, *columns, of=None):
                """The rows of ``table`` of the trials read (or of ``of``, some of them): named by id
                (an index scan), or for many (the first read of a big study) by the same condition,
                skipping trials created since the select above."""
                of = [row.trial_id for row in rows] if of is None else of
                if not of:
                    return ()
                ids = of if len(of) <= MAX_LISTED_IDS else select(_TRIALS.c.trial_id).where(*where).scalar_subquery()
                wanted = set(of)
                id_column = table.primary_key.columns.values()[0]
                query = select(table.c.trial_id, *columns).where(table.c.trial_id.in_(ids)).order_by(id_column)
                return ((fields[r[0]], *r[1:]) for r in session.execute(query) if r[0] in wanted)

            for f, name, value, stored in related(_PARAMS, _PARAMS.c.param_name, _PARAMS.c.param_value,
                                                   _PARAMS.c.distribution_json, of=unread):
                distribution = _distribution(stored)
                f["params"][name] = distribution.to_external_repr(value)
                f["distributions"][name] = distribution
            for f, objective, value, kind in related(_VALUES, _VALUES.c.objective, _VALUES.c.value,
                                                      _VALUES.c.value_type):
                f["values"][objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
            for table, field in ((_USER_ATTRS, "user_attrs"), (_SYSTEM_ATTRS, "system_attrs")):
                for f, key, value_json in related(table, table.c.key, table.c.value_json):
                    f[field][key] = json.loads(value_json)
            for f, step, value, kind in related(_INTERMEDIATE, _INTERMEDIATE.c.step,
                                                 _INTERMEDIATE.c.intermediate_value,
                                                 _INTERMEDIATE.c.intermediate_value_type):
                f["intermediate_values"][step] = \
                    models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(value, kind)
        trials = []
        with self._known_lock:
            for row in rows:
                f = fields[row.trial_id]
                if row.state.is_finished():  # never read again by the cache
                    self._known_params.pop(row.trial_id, None)
                else:
                    self._known_params[row.trial_id] = (dict(f["params"]), dict(f["distributions"]))
                values = f.pop("values")
                trials.append(FrozenTrial(
                    number=row.number, state=row.state, value=None,
                    values=[values[i] for i in sorted(values)] if values else None,
                    datetime_start=_local(row.datetime_start), datetime_complete=_local(row.datetime_complete),
                    trial_id=row.trial_id, **f))
        return trials


def _copy(trial: FrozenTrial) -> FrozenTrial:
    """A copy whose mutable fields a caller may change (Optuna's Trial does) without touching ``trial``."""
    return FrozenTrial(number=trial.number, state=trial.state, value=None, values=list(trial.values or []) or None,
                       datetime_start=trial.datetime_start, datetime_complete=trial.datetime_complete,
                       params=dict(trial.params), distributions=dict(trial.distributions),
                       user_attrs=_stored(trial.user_attrs), system_attrs=_stored(trial.system_attrs),
                       intermediate_values=dict(trial.intermediate_values), trial_id=trial._trial_id)


class OwnedTrialsCache(_CachedStorage):
    """Optuna's cached RDB storage, which also keeps the trials this process runs (created or
    popped from the queue through it): each write to them updates the copy, so reading one is a
    read of its state alone (another worker may have failed it), and the copy is dropped once a
    refresh reads the trial finished. Any failed write drops the copy: the next read is whole."""

    def __init__(self, backend: CoreRDBStorage) -> None:
        super().__init__(backend)
        self._backend: CoreRDBStorage = backend
        self._own: dict[int, FrozenTrial] = {}
        self._fresh: set[int] = set()  # own trials not read since this process created (or popped) them

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._own, self._fresh = {}, set()  # an unpickled copy (another process) runs none of them

    # --- the trials this process runs ------------------------------------------------------------
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        with self._lock:
            number = self._trial_id_to_study_id_and_number[trial_id][1]
            trial = self._studies[study_id].trials[number]
            if trial.state == TrialState.RUNNING:  # a WAITING one (enqueued) is run by whoever pops it
                self._own[trial_id] = _copy(trial)
                self._fresh.add(trial_id)
        self._backend.knows(trial)
        return trial_id

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            own = self._own.get(trial_id)
            if own is not None and trial_id in self._fresh:  # Optuna's Trial(), just after the creation
                self._fresh.discard(trial_id)
                return _copy(own)
        if own is None:
            return super().get_trial(trial_id)
        with self._backend.reading() as session:
            row = session.execute(select(_TRIALS.c.state, _TRIALS.c.datetime_complete)
                                  .where(_TRIALS.c.trial_id == trial_id)).first()
        with self._lock:
            if row is not None and row.state == own.state:
                own.datetime_complete = _local(row.datetime_complete)
                return _copy(own)
            self._forget(trial_id)  # finished by another process (or deleted): read it whole
        return super().get_trial(trial_id)

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        """An own trial's attributes from its copy: only this process writes them (a worker that
        takes it for dead changes its state alone)."""
        with self._lock:
            own = self._own.get(trial_id)
            if own is not None:
                return _stored(own.system_attrs)
        return super().get_trial_system_attrs(trial_id)

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        """As :meth:`get_trial_system_attrs`."""
        with self._lock:
            own = self._own.get(trial_id)
            if own is not None:
                return _stored(own.user_attrs)
        return super().get_trial_user_attrs(trial_id)

    def _forget(self, trial_id: int) -> None:
        """Drop the copy of trial ``trial_id`` (under the lock): its next read is whole."""
        self._own.pop(trial_id, None)
        self._fresh.discard(trial_id)

    def _update(self, trial_id: int, write, change) -> Any:
        """Run ``write`` (the backend's write to trial ``trial_id``), then ``change`` the copy of it
        if this process runs it; a write that raises drops the copy."""
        try:
            result = write()
        except BaseException:
            with self._lock:
                self._forget(trial_id)
            raise
        with self._lock:
            own = self._own.get(trial_id)
            if own is not None:
                change(own, result)
        return result

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        """A parameter this process's trial already holds with this value and distribution is
        not written again (Optuna's storage ignores that repeat too, after a transaction): a
        stepwise sampler writes the whole assignment before Optuna writes the one it asked for."""
        with self._lock:
            own = self._own.get(trial_id)
            if own is not None and own.distributions.get(param_name) == distribution \
                    and own.params[param_name] == distribution.to_external_repr(float(param_value_internal)):
                return
        self.set_trial_params(trial_id, {param_name: (param_value_internal, distribution)})

    def set_trial_params(self, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]) -> None:
        """Write ``params`` (name -> (internal value, distribution)) of running trial ``trial_id``
        in one transaction (Optuna writes each ``set_trial_param`` in its own)."""
        def change(own: FrozenTrial, _) -> None:
            for name, (value, distribution) in params.items():
                own.params[name] = distribution.to_external_repr(float(value))
                own.distributions[name] = distribution

        self._update(trial_id, lambda: write_params(self, trial_id, params), change)
        self._backend.wrote_params(trial_id, params)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._update(trial_id, lambda: super(OwnedTrialsCache, self).set_trial_system_attr(trial_id, key, value),
                     lambda own, _: own.system_attrs.__setitem__(key, _stored(value)))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._update(trial_id, lambda: super(OwnedTrialsCache, self).set_trial_user_attr(trial_id, key, value),
                     lambda own, _: own.user_attrs.__setitem__(key, _stored(value)))

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self._update(trial_id, lambda: super(OwnedTrialsCache, self).set_trial_intermediate_value(
            trial_id, step, intermediate_value),
            lambda own, _: own.intermediate_values.__setitem__(step, float(intermediate_value)))

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        changed = self._update(trial_id, lambda: super(OwnedTrialsCache, self).set_trial_state_values(
            trial_id, state, values), lambda own, changed: None)
        with self._lock:
            own = self._own.pop(trial_id, None)
        if changed and state == TrialState.RUNNING:  # popped from the queue: this process runs it now
            trial = self._backend.get_trial(trial_id)
            with self._lock:
                self._own[trial_id] = trial
                self._fresh.add(trial_id)
        elif changed and own is not None and state.is_finished():  # read back by tell; dropped at the next refresh
            own.state, own.values = state, [float(v) for v in values] if values is not None else own.values
            with self._lock:
                self._own[trial_id] = own
        return changed

    # --- reads of the whole study ----------------------------------------------------------------
    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        super()._read_trials_from_remote_storage(study_id)
        with self._lock:
            for trial_id in list(self._own):
                sid, number = self._trial_id_to_study_id_and_number[trial_id]
                if sid == study_id and self._studies[sid].trials[number].state.is_finished():
                    self._forget(trial_id)  # read finished: the cache answers it now

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        if states is not None and list(states) == [TrialState.WAITING]:  # Optuna's ask, every trial
            with self._backend.reading() as session:
                waiting = session.execute(select(_TRIALS.c.trial_id).where(
                    _TRIALS.c.study_id == study_id, _TRIALS.c.state == TrialState.WAITING).limit(1)).first()
            if waiting is None and study_id in self._studies:
                return []
        return super().get_all_trials(study_id, deepcopy, states)


def write_params(storage: _CachedStorage, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]) -> None:
    """Write ``params`` of running trial ``trial_id`` through ``storage``'s RDB backend, the rows
    ``set_trial_param`` writes. A distribution this process has seen in the study is checked
    against the cache, as Optuna's cached ``set_trial_param`` does; one it has not, by the RDB
    storage's own write (a query each, once per process). Where every distribution is known, the
    write is one insert conditional on the trial being live, in autocommit on PostgreSQL; otherwise
    one transaction that reads the trial's state, then inserts."""
    backend: RDBStorage = storage._backend
    with storage._lock:
        study_id, _ = storage._trial_id_to_study_id_and_number[trial_id]
        known = storage._studies[study_id].param_distribution
        for name, (_, distribution) in params.items():
            if name in known:
                check_distribution_compatibility(known[name], distribution)
        rows = [{"trial_id": trial_id, "param_name": name, "param_value": value,
                 "distribution_json": distribution_to_json(distribution)}
                for name, (value, distribution) in params.items()]
        if not (isinstance(backend, CoreRDBStorage) and all(n in known for n in params)
                and backend.insert_params(trial_id, rows)):
            with _create_scoped_session(backend.scoped_session, True) as session:
                state = session.execute(select(_TRIALS.c.state).where(_TRIALS.c.trial_id == trial_id)).scalar()
                if state is None:
                    raise KeyError(models.NOT_FOUND_MSG)
                backend.check_trial_is_updatable(trial_id, state)
                for name, (value, distribution) in params.items():
                    if name not in known:
                        backend._set_trial_param_without_commit(session, trial_id, name, value, distribution)
                listed = [row for row in rows if row["param_name"] in known]
                if listed:
                    session.execute(insert(_PARAMS), listed)
        for name, (_, distribution) in params.items():
            known.setdefault(name, distribution)
