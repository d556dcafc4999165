"""A trial failed by another worker while this worker still works on it (issue 37). During a fault
run a worker died in add_measured's claim with UpdateFinishedTrialError: another worker's
recover_stale had taken it for dead and failed its new trial. Here the other worker (its own
storage on the same study) fails the trial right after the claim's write, before its re-read (or
as the trial is told), on the real storages with the real sampler: nothing may escape, the claim
fails, and the study ends with the result of an undisturbed walk, nothing evaluated twice."""
from __future__ import annotations

import logging
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from aqsvit.search import GreedySampler, SearchSpace
from aqsvit.search.storages import create_storage
from aqsvit.search.study import optimize, wait_hook
from aqsvit.search.vocabulary import KEY_ATTR
from test_concurrent_start import measured
from test_samplers import SIZES, make_objective, run
from worker_tools import PG_URL, check_finished, need_pg


class FailedUnder:
    """A worker's storage, thinly wrapped: right after the first claim written on it (``point``
    ``claim``), or right before its first final state (``tell``: Optuna telling a trial), another
    worker (``other``: its own storage) takes that trial for dead and fails it, as ``recover_stale``
    does with a trial whose heartbeat is older than the grace period."""

    def __init__(self, storage: optuna.storages.BaseStorage, other: optuna.storages.BaseStorage, point: str) -> None:
        self._storage, self._other, self.point = storage, other, point
        self.hit: int | None = None  # the trial failed under this worker

    def __getattr__(self, name: str):
        return getattr(self._storage, name)

    def set_trial_system_attr(self, trial_id: int, key: str, value) -> None:
        self._storage.set_trial_system_attr(trial_id, key, value)
        if self.point == "claim" and key == KEY_ATTR and value is not None:
            self._fail(trial_id)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        if self.point == "tell" and state.is_finished():
            self._fail(trial_id)
        return self._storage.set_trial_state_values(trial_id, state, values)

    def _fail(self, trial_id: int) -> None:
        if self.hit is None:
            self.hit = trial_id
            self._other.set_trial_state_values(trial_id, TrialState.FAIL)


def storage_of(backend: str, folder) -> optuna.storages.BaseStorage:
    """A storage as a worker holds it (Optuna's cache around RDB), one per call: one per worker."""
    urls = {"journal": f"journal:///{folder}/study.log", "sqlite": f"sqlite:///{folder}/study.db", "postgres": PG_URL}
    if backend == "postgres":
        need_pg()
    return optuna.storages.get_storage(create_storage(urls[backend]))


@pytest.mark.parametrize("case", ["measured", "asked", "enqueued", "told"])
@pytest.mark.parametrize("backend", ["journal", "sqlite", "postgres"])
def test_a_trial_failed_under_its_worker_claims_nothing_and_the_worker_goes_on(backend, case, tmp_path, caplog):
    """Failed under its claim: ``measured``, add_measured's new trial (the crash seen); ``asked``, a
    trial claiming its proposal at its first parameter; ``enqueued``, a trial claiming its fixed
    assignment in ``before_trial``. ``told``: failed once its objective returned, as Optuna tells
    it. But for ``measured`` (outside any trial), the worker drops that trial and goes on."""
    space = SearchSpace.from_units(SIZES)
    name = f"taken-{uuid.uuid4().hex[:8]}"
    optuna.create_study(storage=storage_of(backend, tmp_path), study_name=name, directions=["maximize", "minimize"])
    storage = FailedUnder(storage_of(backend, tmp_path), storage_of(backend, tmp_path),
                          "tell" if case == "told" else "claim")
    sampler = GreedySampler(space, start="one_width", on_wait=wait_hook(), poll_interval=0.01)
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    claims, real_claim = [], sampler._claim

    def claim(study_, trial_id, number, key, choices, *delta):
        claims.append((trial_id, real_claim(study_, trial_id, number, key, choices, *delta)))
        return claims[-1][1]

    sampler._claim = claim
    if case == "measured":
        assert sampler.add_measured(study, measured(space)) is False
    if case == "enqueued":
        study.enqueue_trial(space.params(space.uniform(space.candidates()[0])))
    with caplog.at_level(logging.WARNING, logger="aqsvit"):
        optimize(study, make_objective(space))
    assert storage.hit is not None, "no trial was failed: the case tests nothing"
    held = [won for trial_id, won in claims if trial_id == storage.hit]
    assert held == [True] if case == "told" else held and not any(held), f"claims of the failed trial: {held}"
    dropped = [r for r in caplog.records if "took it for dead" in r.getMessage()]
    assert len(dropped) == (case != "measured"), [r.getMessage() for r in caplog.records]
    assert next(t for t in study.get_trials() if t._trial_id == storage.hit).state == TrialState.FAIL
    alone = run(GreedySampler(space, start="one_width"), space)
    assert sampler.result(study) == alone.sampler.result(alone)
    check_finished(study, GreedySampler(space))
