"""study_trials against Optuna's get_all_trials, on the real SQLite, journal file, PostgreSQL and
in memory: the same trials in the same order after every kind of write, by this process and by
another worker's storage."""
from __future__ import annotations

from contextlib import nullcontext

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from aqsvit.search.storages import create_storage
from aqsvit.search.trial_reads import IndexedJournalStorage, study_trials
from test_trial_writes import storage_url

D = CategoricalDistribution(["a", "b"])


def snapshot(trials) -> list[tuple]:
    return [(t.number, t._trial_id, t.state, t.params, t.values, t.system_attrs, t.user_attrs) for t in trials]


@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgresql", "memory"])
def test_study_trials_reads_what_get_all_trials_reads(kind, tmp_path):
    with nullcontext(None) if kind == "memory" else storage_url(kind, tmp_path) as url:
        ours = create_storage(url) if url else optuna.storages.InMemoryStorage()
        study = optuna.create_study(storage=ours, directions=["maximize", "minimize"])
        other = optuna.load_study(study_name=study.study_name, storage=create_storage(url)) if url else study
        storage = study._storage

        def check():
            got = study_trials(storage, study._study_id)
            want = storage.get_all_trials(study._study_id, deepcopy=False)
            assert len(got) == len(want) and snapshot(got) == snapshot(want)
            assert [got[n].number for n in range(len(got))] == list(range(len(got)))
            if len(got):
                assert got[-1].number == len(got) - 1 and [t.number for t in got[1:]] == list(range(1, len(got)))

        check()  # empty
        running = [study.ask(), other.ask(), study.ask()]
        check()
        study._storage.set_trial_system_attr(running[0]._trial_id, "key", "k0")
        other._storage.set_trial_param(running[1]._trial_id, "x", 0, D)  # another worker's write
        check()
        study.tell(running[2], (1.0, 2.0))  # finished out of number order
        other.tell(running[1], state=TrialState.FAIL)
        check()
        study.tell(running[0], state=TrialState.PRUNED)
        for _ in range(3):
            other.tell(other.ask(), (0.5, 1.0))
        check()
        with pytest.raises(IndexError):
            study_trials(storage, study._study_id)[6]



def test_the_indexed_journal_reads_live_trials_as_the_journal_does(tmp_path):
    """IndexedJournalStorage's state-filtered reads (Optuna's ask reads WAITING trials) against a
    plain JournalStorage on the same file, while another worker enqueues, asks and finishes."""
    url = f"journal:///{tmp_path}/j.log"
    ours = create_storage(url)
    assert isinstance(ours, IndexedJournalStorage)
    study = optuna.create_study(storage=ours, directions=["maximize", "minimize"])
    other = optuna.load_study(study_name=study.study_name, storage=create_storage(url))
    plain = JournalStorage(JournalFileBackend(f"{tmp_path}/j.log"))

    def check():
        for states in [(TrialState.WAITING,), (TrialState.RUNNING,), (TrialState.RUNNING, TrialState.WAITING),
                       (TrialState.COMPLETE,), None]:
            got = ours.get_all_trials(study._study_id, deepcopy=False, states=states)
            assert snapshot(got) == snapshot(plain.get_all_trials(study._study_id, deepcopy=False, states=states))

    check()
    for i in range(3):
        other.enqueue_trial({"x": "a"})
    check()
    first, second = study.ask(), other.ask()  # both take WAITING trials
    check()
    study.tell(first, (1.0, 1.0))
    other.tell(second, state=TrialState.FAIL)
    check()
    study.tell(study.ask(), state=TrialState.PRUNED)  # the last WAITING one
    other.ask()
    check()
    assert not ours.get_all_trials(study._study_id, states=(TrialState.WAITING,))
