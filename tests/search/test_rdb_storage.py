"""The RDB storage aqsvit opens (aqsvit.search.rdb_storage) against Optuna's own RDBStorage on the
same real SQLite file and PostgreSQL database: the same trials read back after every kind of write,
by this process and by another worker, and the same answers at ask and tell."""
from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from aqsvit.search.rdb_storage import CoreRDBStorage, OwnedTrialsCache
from aqsvit.search.storages import create_storage
from test_trial_writes import storage_url

DISTRIBUTIONS = {"c": CategoricalDistribution(["a", 3, None, 2.5]), "f": FloatDistribution(1e-3, 1.0, log=True),
                 "i": IntDistribution(2, 8, step=2), "g": FloatDistribution(-1.0, 1.0, step=0.25)}
VALUES = {"c": None, "f": 0.0123, "i": 6, "g": -0.75}


def snapshot(trial) -> tuple:
    """Every field of a FrozenTrial, NaN made comparable."""
    def plain(x):
        return "nan" if isinstance(x, float) and math.isnan(x) else x
    return (trial.number, trial._trial_id, trial.state, trial.values, trial.datetime_start, trial.datetime_complete,
            trial.params, trial.distributions, trial.user_attrs, trial.system_attrs,
            {k: plain(v) for k, v in trial.intermediate_values.items()})


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    with storage_url(request.param, tmp_path) as url:
        yield url


def fill(study: optuna.Study, other: optuna.Study) -> list[optuna.Trial]:
    """Trials of every state and kind of field, written by ``study``'s process and ``other``'s."""
    done = study.ask(DISTRIBUTIONS)
    done.set_user_attr("nested", {"a": (1, 2), "b": [None, True]})
    done.storage.set_trial_system_attr(done._trial_id, "key", "k0")
    for step, value in enumerate([0.5, float("nan"), float("inf"), float("-inf")]):
        done.storage.set_trial_intermediate_value(done._trial_id, step, value)
    study.tell(done, (float("inf"), -2.0))
    pruned = other.ask(DISTRIBUTIONS)
    pruned.storage.set_trial_intermediate_value(pruned._trial_id, 3, 0.25)
    other.tell(pruned, state=TrialState.PRUNED)
    other.tell(other.ask(), state=TrialState.FAIL)
    study.enqueue_trial(VALUES, user_attrs={"queued": 1})
    return [study.ask(DISTRIBUTIONS), other.ask({"f": DISTRIBUTIONS["f"]})]  # one running in each process


def test_core_reads_return_what_the_orm_reads(url):
    ours = create_storage(url)
    assert isinstance(ours, OwnedTrialsCache) and isinstance(ours._backend, CoreRDBStorage)
    study = optuna.create_study(storage=ours, directions=["maximize", "minimize"])
    other = optuna.load_study(study_name=study.study_name, storage=create_storage(url))
    running = fill(study, other)
    core, orm = ours._backend, RDBStorage(url)
    sid = study._study_id
    core._get_trials(sid, None, set(), -1)  # read once: the live trials' parameters are known
    running[1].set_user_attr("late", 1)  # written after this process last read that trial
    running[1].suggest_int("late", 0, 3)  # a parameter added to a live trial is read again
    for states in (None, (TrialState.WAITING,), (TrialState.RUNNING, TrialState.COMPLETE)):
        for included, after in ((set(), -1), ({running[0]._trial_id}, running[0]._trial_id), ({1, 2}, 2)):
            got = core._get_trials(sid, states, included, after)
            want = orm._get_trials(sid, states, included, after)
            assert [snapshot(t) for t in got] == [snapshot(t) for t in want]
    for trial in orm.get_all_trials(sid):
        assert snapshot(core.get_trial(trial._trial_id)) == snapshot(trial)
    with pytest.raises(KeyError):
        core.get_trial(10**6)
    with pytest.raises(KeyError):
        core._get_trials(10**6, None, set(), -1)


def test_this_process_reads_its_running_trial_as_optuna_does(url):
    ours = create_storage(url)
    study = optuna.create_study(storage=ours, directions=["maximize", "minimize"])
    orm = RDBStorage(url)
    trial = study.ask()
    tid = trial._trial_id

    def check():
        got = ours.get_trial(tid)
        assert snapshot(got) == snapshot(orm.get_trial(tid))
        got.params["x"], got.system_attrs["x"] = 1, 1  # Optuna's Trial changes what it is handed
        assert "x" not in ours.get_trial(tid).params and "x" not in ours.get_trial(tid).system_attrs

    assert tid in ours._own
    check()
    ours.set_trial_params(tid, {n: (d.to_internal_repr(VALUES[n]), d) for n, d in DISTRIBUTIONS.items()})
    check()
    trial.suggest_int("extra", 0, 3)  # Optuna's own single write
    trial.set_user_attr("u", (1, "two"))
    ours.set_trial_system_attr(tid, "fixed", {"p": [1, 2]})
    ours.set_trial_intermediate_value(tid, 0, float("nan"))
    ours.set_trial_intermediate_value(tid, 1, 7)
    trial.set_constraint("error", 0.5)
    check()
    with pytest.raises(ValueError):  # Optuna's refusal of another distribution for a known name
        ours.set_trial_param(tid, "f", 0.5, FloatDistribution(0.0, 2.0))
    check()  # a failed write: read whole again, still the same
    finished = study.tell(trial, (1.0, 2.0))
    assert snapshot(finished) == snapshot(orm.get_trial(tid))  # tell's read back: datetime_complete included
    study.get_trials()  # a refresh reads it finished: the cache answers it from now on
    assert tid not in ours._own and snapshot(ours.get_trial(tid)) == snapshot(orm.get_trial(tid))


def test_a_trial_another_worker_fails_reads_failed(url):
    """The one write another process makes on this process's running trial: taking it for dead."""
    ours = create_storage(url)
    study = optuna.create_study(storage=ours, directions=["maximize", "minimize"])
    trial = study.ask()
    trial.set_user_attr("u", 1)
    RDBStorage(url).set_trial_state_values(trial._trial_id, TrialState.FAIL)
    assert ours.get_trial(trial._trial_id).state == TrialState.FAIL
    with pytest.raises(ValueError, match="Cannot tell a FAIL trial"):  # as Optuna's own storage answers tell
        study.tell(trial, (1.0, 1.0))
    assert study.tell(trial, (1.0, 1.0), skip_if_finished=True).state == TrialState.FAIL


def test_waiting_reads_and_the_queue(url):
    """Optuna's ask reads the WAITING trials on every ask: one query while there are none, the
    queue's trials as Optuna reads them otherwise; a popped trial is this process's own."""
    ours = create_storage(url)
    study = optuna.create_study(storage=ours, directions=["maximize", "minimize"])
    other = optuna.load_study(study_name=study.study_name, storage=create_storage(url))
    orm, sid = RDBStorage(url), study._study_id

    def waiting(storage):
        return [snapshot(t) for t in storage.get_all_trials(sid, states=(TrialState.WAITING,))]

    assert waiting(ours) == waiting(orm) == []
    study.tell(study.ask(), (1.0, 1.0))
    other.enqueue_trial({"f": 0.5})
    other.enqueue_trial({"f": 0.25})
    assert len(waiting(ours)) == 2 and waiting(ours) == waiting(orm)
    popped = study.ask()
    assert popped._trial_id in ours._own and popped.suggest_float("f", 1e-3, 1.0) == 0.5
    assert snapshot(ours.get_trial(popped._trial_id)) == snapshot(orm.get_trial(popped._trial_id))
    assert waiting(ours) == waiting(orm) and len(waiting(ours)) == 1
    other.ask()
    assert waiting(ours) == waiting(orm) == []
    with pytest.raises(KeyError):
        ours.get_all_trials(10**6, states=(TrialState.WAITING,))


def test_core_writes_leave_what_optunas_writes_leave(url):
    """The same trials written through Optuna's RDBStorage and through ours read back equal
    (ids and times aside), and a write on a finished or missing trial is refused as Optuna's is."""
    from optuna.exceptions import UpdateFinishedTrialError

    def written(storage) -> tuple[list, list]:
        study = optuna.create_study(storage=storage, directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        sid = study._study_id
        done = study.ask(DISTRIBUTIONS)
        storage.set_trial_system_attr(done._trial_id, "key", {"k": [1, None]})
        storage.set_trial_system_attr(done._trial_id, "key", "overwritten")
        storage.set_trial_user_attr(done._trial_id, "u", (1, "two"))
        study.tell(done, (float("inf"), -2.5))
        study.tell(study.ask(DISTRIBUTIONS), state=TrialState.PRUNED)  # names known: ours inserts them at once
        study.tell(study.ask(), state=TrialState.FAIL)
        study.enqueue_trial(VALUES)
        queued = study.ask()  # popped from the queue: Optuna's own write
        study.tell(queued, (1.0, float("-inf")))
        refusals = []
        for write in (lambda t: storage.set_trial_system_attr(t, "k", 1), lambda t: storage.set_trial_user_attr(t, "k", 1),
                      lambda t: storage.set_trial_param(t, "g", 0.5, DISTRIBUTIONS["g"]),
                      lambda t: storage.set_trial_state_values(t, TrialState.COMPLETE, (1.0, 1.0))):
            for trial_id in (done._trial_id, 10**6):
                with pytest.raises((UpdateFinishedTrialError, KeyError)) as refused:
                    write(trial_id)
                refusals.append(refused.type)
        with pytest.raises(KeyError):
            storage.create_new_trial(10**6)
        trials = [(t.number, t.state, t.values, t.params, t.distributions, t.user_attrs, t.system_attrs,
                   t.datetime_start is not None, t.datetime_complete is not None)
                  for t in RDBStorage(url).get_all_trials(sid)]
        return trials, refusals

    assert written(create_storage(url)) == written(RDBStorage(url))


def test_workers_creating_trials_at_once_number_them_densely(url):
    """Trial numbers come from a count under a lock of the study's row: four processes creating
    trials at once give every number once."""
    import multiprocessing

    study = optuna.create_study(storage=create_storage(url))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.starmap(_create_trials, [(url, study.study_name, 15)] * 4)
    trials = RDBStorage(url).get_all_trials(study._study_id)
    assert sorted(t.number for t in trials) == list(range(60))


def _create_trials(url: str, name: str, n: int) -> None:
    study = optuna.load_study(study_name=name, storage=create_storage(url))
    for _ in range(n):
        study.tell(study.ask(), 1.0)


def test_a_server_connection_lost_while_idle_is_replaced_before_use(tmp_path, monkeypatch):
    """A database restart drops the pooled connections: the next use after an idle spell pings and
    reconnects; without the ping (idle shorter than IDLE_PING_S) the drop is the statement's error."""
    import sqlalchemy
    from optuna.exceptions import StorageInternalError
    from aqsvit.search import rdb_storage

    with storage_url("postgresql", tmp_path) as url:
        study = optuna.create_study(storage=create_storage(url))
        study.tell(study.ask(), 1.0)
        admin = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)

        def drop_the_others() -> int:
            with admin.connect() as connection:
                return len(connection.execute(sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())

        monkeypatch.setattr(rdb_storage, "IDLE_PING_S", 3600.0)
        assert drop_the_others() >= 1
        with pytest.raises(StorageInternalError):
            study.tell(study.ask(), 2.0)
        monkeypatch.setattr(rdb_storage, "IDLE_PING_S", 0.0)
        study.tell(study.ask(), 2.0)  # connections made after the error, pooled
        assert drop_the_others() >= 1
        study.tell(study.ask(), 3.0)
        assert [t.value for t in study.trials if t.state == TrialState.COMPLETE][-1] == 3.0
        admin.dispose()
