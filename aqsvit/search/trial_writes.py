"""Write many parameters of a running trial at once.

Optuna writes a trial's parameters one suggest at a time, each its own storage write: a
transaction on SQLite or PostgreSQL (an fsync or a round trip each), a locked append on a journal
file. A stepwise sampler knows the whole assignment when it claims it (96 parameters for a 48-unit
space), so it writes them in one transaction or one append (:func:`set_trial_params`) and Optuna's
suggests then find them on the trial and write nothing.

RDB storages (under Optuna's cache or aqsvit's, :mod:`~aqsvit.search.rdb_storage`: one Core insert)
and journal storages are written through their own tables and log operations (Optuna's internals:
the same rows and log records their ``set_trial_param`` writes, tests/search/test_trial_writes.py
compares them); any other storage param by param, through the public API.
"""
from __future__ import annotations

from collections.abc import Mapping

from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage

from aqsvit.search.rdb_storage import OwnedTrialsCache, write_params


def set_trial_params(storage: BaseStorage, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]) -> None:
    """Write ``params`` (name -> (internal value, distribution)) of running trial ``trial_id``,
    none of which it has yet, in one write where the storage allows it. Raises what
    ``set_trial_param`` raises: UpdateFinishedTrialError once the trial has finished, ValueError
    for a distribution incompatible with the study's."""
    if isinstance(storage, OwnedTrialsCache):
        storage.set_trial_params(trial_id, params)
    elif isinstance(storage, _CachedStorage) and isinstance(storage._backend, RDBStorage):
        write_params(storage, trial_id, params)
    elif isinstance(storage, JournalStorage):
        _journal(storage, trial_id, params)
    else:
        for name, (value, distribution) in params.items():
            storage.set_trial_param(trial_id, name, value, distribution)


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
