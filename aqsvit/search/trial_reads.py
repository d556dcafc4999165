"""Read a study's trials by number, without building the whole list on every read.

``storage.get_all_trials`` refreshes from the backend incrementally, then builds and sorts a list
of every trial: about 3 ms at 10,000 trials, on every call. A stepwise sampler reads the study twice
per ask but looks only at the trials that are new or were live at its last read
(:class:`~aqsvit.search.stepwise.ledger.Ledger`), so :func:`study_trials` refreshes the same way
and hands out the storage's own trials by number. RDB storages (under Optuna's cache, as every
study opens them) and the journal file are read through Optuna's internals (pinned in
pyproject.toml; tests/search/test_trial_reads.py compares them with ``get_all_trials``); any other
storage through ``get_all_trials``.

Optuna's own ``Study.ask`` reads the study for WAITING trials on every ask, through
``get_all_trials(states=...)``: O(study) on a journal. :class:`IndexedJournalStorage`, the journal
storage aqsvit opens, answers that read from the trials not yet seen finished.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Container, Sequence
from typing import overload

from optuna.storages import BaseStorage, JournalStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.trial import FrozenTrial, TrialState

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class NumberedTrials(Sequence[FrozenTrial]):
    """A study's trials at one refresh, in number order: ``trials[n]`` is trial number ``n``."""

    def __init__(self, count: int, by_number: Callable[[int], FrozenTrial]) -> None:
        self._count, self._by_number = count, by_number

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> FrozenTrial: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[FrozenTrial]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._by_number(index)


def study_trials(storage: BaseStorage, study_id: int) -> Sequence[FrozenTrial]:
    """All trials of study ``study_id`` in number order, refreshed from the backend as
    ``get_all_trials`` refreshes them; O(changed trials) on RDB and journal storages."""
    if isinstance(storage, _CachedStorage):
        storage._read_trials_from_remote_storage(study_id)
        by_number = storage._studies[study_id].trials  # filled in number order; a refresh only adds or replaces
        return NumberedTrials(len(by_number), by_number.__getitem__)
    if isinstance(storage, JournalStorage):
        with storage._thread_lock:
            storage._sync_with_backend()
            replay = storage._replay_result
            ids, trials = replay._study_id_to_trial_ids[study_id], replay._trials  # append-only; replaced on update
            count = len(ids)
        return NumberedTrials(count, lambda number: trials[ids[number]])
    return storage.get_all_trials(study_id, deepcopy=False)


class IndexedJournalStorage(JournalStorage):
    """A journal storage whose reads of live trials only (``states`` without a finished state, as
    Optuna's ask asks for WAITING ones) cost O(new + live trials) instead of O(study): it keeps, per
    study, the trials it has not yet seen finished (a finished trial never changes state again).
    Every other read and every write is the journal's own."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._not_finished: dict[int, tuple[int, list[int]]] = {}  # study id -> (trials seen, ids not seen finished)

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        if states is None or any(state in states for state in FINISHED_STATES):
            return super().get_all_trials(study_id, deepcopy, states)
        with self._thread_lock:
            self._sync_with_backend()
            replay = self._replay_result
            if study_id not in replay._study_id_to_trial_ids:
                return super().get_all_trials(study_id, deepcopy, states)  # Optuna's error for an unknown study
            ids, trials = replay._study_id_to_trial_ids[study_id], replay._trials
            seen, not_finished = self._not_finished.get(study_id, (0, []))
            not_finished = [i for i in (*not_finished, *ids[seen:]) if not trials[i].state.is_finished()]
            self._not_finished[study_id] = (len(ids), not_finished)
            found = [trials[i] for i in not_finished if trials[i].state in states]
        return copy.deepcopy(found) if deepcopy else found
