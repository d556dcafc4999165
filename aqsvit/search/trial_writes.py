"""Write many parameters of a running trial at once.

Optuna writes a trial's parameters one suggest at a time, each its own storage write: a
transaction on SQLite or PostgreSQL (an fsync or a round trip each), a locked append on a journal
file. A stepwise sampler knows the whole assignment when it claims it (96 parameters for a 48-unit
space), so it writes them in one transaction or one append (:func:`set_trial_params`) and Optuna's
suggests then find them on the trial and write nothing.

RDB (under Optuna's cache, as every study opens them) and journal storages are written through
their own models and log operations (Optuna's internals: the same rows and log records their
``set_trial_param`` writes, tests/search/test_trial_writes.py compares them); any other storage
param by param, through the public API.
"""
from __future__ import annotations

from collections.abc import Mapping

from optuna.distributions import BaseDistribution, check_distribution_compatibility, distribution_to_json
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage


def set_trial_params(storage: BaseStorage, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]) -> None:
    """Write ``params`` (name -> (internal value, distribution)) of running trial ``trial_id``,
    none of which it has yet, in one write where the storage allows it. Raises what
    ``set_trial_param`` raises: UpdateFinishedTrialError once the trial has finished, ValueError
    for a distribution incompatible with the study's."""
    if isinstance(storage, _CachedStorage) and isinstance(storage._backend, RDBStorage):
        _rdb(storage, trial_id, params)
    elif isinstance(storage, JournalStorage):
        _journal(storage, trial_id, params)
    else:
        for name, (value, distribution) in params.items():
            storage.set_trial_param(trial_id, name, value, distribution)


def _rdb(storage: _CachedStorage, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]) -> None:
    """One transaction. A distribution this process has seen in the study is checked against the
    cache, as Optuna's cached ``set_trial_param`` does; one it has not, by the RDB storage's own
    write (a query each, once per process), which then writes that row."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    backend: RDBStorage = storage._backend
    with storage._lock:
        study_id, _ = storage._trial_id_to_study_id_and_number[trial_id]
        known = storage._studies[study_id].param_distribution
        with _create_scoped_session(backend.scoped_session, True) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            backend.check_trial_is_updatable(trial_id, trial.state)
            rows = []
            for name, (value, distribution) in params.items():
                if name in known:
                    check_distribution_compatibility(known[name], distribution)
                    rows.append(models.TrialParamModel(trial_id=trial_id, param_name=name, param_value=value,
                                                       distribution_json=distribution_to_json(distribution)))
                else:
                    backend._set_trial_param_without_commit(session, trial_id, name, value, distribution)
            session.add_all(rows)
        for name, (_, distribution) in params.items():
            known.setdefault(name, distribution)


def _journal(storage: JournalStorage, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]) -> None:
    """One append of the log records ``set_trial_param`` writes one by one; replaying them checks
    the trial and the distributions as it does for those."""
    from optuna.storages.journal._storage import JournalOperation

    with storage._thread_lock:
        worker_id = storage._replay_result.worker_id
        storage._backend.append_logs([
            {"op_code": JournalOperation.SET_TRIAL_PARAM, "worker_id": worker_id, "trial_id": trial_id,
             "param_name": name, "param_value_internal": value, "distribution": distribution_to_json(distribution)}
            for name, (value, distribution) in params.items()])
        storage._sync_with_backend()
