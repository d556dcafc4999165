"""set_trial_params against Optuna's own writes, on the real SQLite, journal file and PostgreSQL:
the same trial read back, the same refusals, and a stepwise sampler's trial written in two
parameter writes instead of one per parameter."""
from __future__ import annotations

from contextlib import contextmanager

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from aqsvit.search import GreedySampler, SearchSpace
from aqsvit.search import rdb_storage
from aqsvit.search.rdb_storage import write_params
from aqsvit.search.storages import create_storage
from aqsvit.search.trial_writes import set_trial_params
from worker_tools import new_pg_database

DISTRIBUTIONS = {f"p{i}": CategoricalDistribution(["a", "b", 3]) for i in range(6)}
VALUES = {f"p{i}": ["a", "b", 3][i % 3] for i in range(6)}


@contextmanager
def storage_url(kind: str, tmp_path):
    if kind == "postgresql":
        with new_pg_database() as url:
            yield url
    else:
        yield {"sqlite": f"sqlite:///{tmp_path}/s.db", "journal": f"journal:///{tmp_path}/s.log"}[kind]


@pytest.fixture(params=["sqlite", "journal", "postgresql"])
def study(request, tmp_path):
    with storage_url(request.param, tmp_path) as url:
        yield optuna.create_study(storage=create_storage(url), directions=["maximize", "minimize"])


def internal(params: dict) -> dict:
    return {n: (DISTRIBUTIONS[n].to_internal_repr(v), DISTRIBUTIONS[n]) for n, v in params.items()}


def test_the_trial_reads_back_as_optuna_writes_it(study):
    ours, theirs = study.ask(), study.ask()
    set_trial_params(study._storage, ours._trial_id, internal(VALUES))
    for name, (value, distribution) in internal(VALUES).items():  # Optuna's own write, one by one
        study._storage.set_trial_param(theirs._trial_id, name, value, distribution)
    read = {t.number: t for t in study.get_trials()}  # a fresh read: every process sees the same
    assert read[ours.number].params == read[theirs.number].params == VALUES
    assert read[ours.number].distributions == read[theirs.number].distributions == DISTRIBUTIONS
    again = optuna.load_study(study_name=study.study_name, storage=study._storage)  # another reader
    assert again.trials[ours.number].params == VALUES


def test_refusals_are_optunas(study):
    first = study.ask()
    set_trial_params(study._storage, first._trial_id, internal({"p0": "a"}))
    study.tell(first, (1.0, 1.0))
    with pytest.raises(UpdateFinishedTrialError):  # a finished trial takes no parameter
        set_trial_params(study._storage, first._trial_id, internal({"p1": "a"}))
    second = study.ask()
    with pytest.raises(ValueError):  # p0 is categorical in this study
        set_trial_params(study._storage, second._trial_id, {"p0": (0.5, FloatDistribution(0, 1))})
    if not isinstance(study._storage, optuna.storages.JournalStorage):  # the journal refuses it on replay only
        assert study.get_trials()[second.number].params == {}


def test_a_stepwise_trial_writes_its_assignment_in_one_parameter_write(tmp_path, monkeypatch):
    space = SearchSpace.from_units({f"layer{i}": 100 + i for i in range(12)}, bits=(8, 4, 2))
    study = optuna.create_study(storage=create_storage(f"sqlite:///{tmp_path}/w.db"),
                                directions=["maximize", "minimize"], sampler=GreedySampler(space))
    writes = []  # each call: one transaction
    monkeypatch.setattr(rdb_storage, "write_params",
                        lambda storage, trial_id, params: writes.append(len(params)) or write_params(storage, trial_id,
                                                                                                     params))
    trial = study.ask()
    choices = space.suggest(trial)
    assert writes == [24]  # all in one transaction; Optuna's write of the suggest that claimed them is skipped
    stored = study.get_trials()[trial.number]
    assert stored.state == TrialState.RUNNING and space.choices_from_params(stored.params) == choices
    assert len(stored.params) == len(space.distributions()) == 24
