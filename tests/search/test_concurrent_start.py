"""Workers started at the same instant on a study that does not exist yet (issue 37): each opens the
storage (creating its schema), creates or loads the study, records its fingerprint, metric names and
context, adds the setup's measured outcome, and walks to the end. Two of three ``aqsvit search``
workers started together on a new PostgreSQL database died creating its tables; all must run."""
from __future__ import annotations

import multiprocessing
import traceback
from contextlib import nullcontext

import optuna
import pytest
from optuna.trial import TrialState

from aqsvit.errors import AqsvitError
from aqsvit.search import GreedySampler, SearchSpace
from aqsvit.search.vocabulary import FINGERPRINT_ATTR
from aqsvit.search.run import open_study
from aqsvit.search.settings import SearchSettings
from aqsvit.search.storages import _lost_creation_race, create_storage
from aqsvit.search.study import wait_hook
from test_samplers import LIMIT, SIZES, error, make_objective, run
from worker_tools import PG_URL, check_finished, load_study, need_pg, new_pg_database

WORKERS = 8
NAME = "together"
FINGERPRINT = {"model": "synthetic", "search space": str(SIZES)}


def sampler(space: SearchSpace) -> GreedySampler:
    return GreedySampler(space, start="one_width", on_wait=wait_hook())


def measured(space: SearchSpace) -> optuna.trial.FrozenTrial:
    """The cheapest one-width assignment measured before the walk, as the screen's setup adds it."""
    cheapest = space.uniform(space.candidates()[0])
    err = error(space, cheapest)
    return optuna.trial.create_trial(
        state=TrialState.COMPLETE, values=[-err, space.cost(cheapest)], params=space.params(cheapest),
        distributions=space.distributions(), constraints={"error": err - LIMIT})


def start_together(url: str, workers: int, search: bool, barrier, results) -> None:
    """One worker: wait for all the others, then open the storage and the study (and search)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace.from_units(SIZES)
    settings = SearchSettings(study_name=NAME, storage_url=url, workers=workers)
    walker = sampler(space)
    barrier.wait(timeout=120)
    try:
        study = open_study(create_storage(url, workers), settings, walker, FINGERPRINT, {"workers": workers})
        if search:
            walker.add_measured(study, measured(space))
            study.optimize(make_objective(space), n_trials=1000)
        results.put(("ok", walker.result(study) if search else None))
    except BaseException:
        results.put(("error", traceback.format_exc()))


@pytest.mark.parametrize("backend", ["postgres", "journal", "sqlite"])
def test_workers_started_at_once_on_a_new_study_all_run(backend, tmp_path):
    """A new PostgreSQL database and a new journal file: 8 workers, all of them search to the same
    result, with no assignment evaluated twice. SQLite serves one worker, but a new file opened by
    several processes at once (a worker and the dashboard, say) must open in every one of them."""
    search = backend != "sqlite"
    files = {"journal": f"journal:///{tmp_path}/study.log", "sqlite": f"sqlite:///{tmp_path}/study.db"}
    with new_pg_database() if backend == "postgres" else nullcontext(files[backend]) as url:
        context = multiprocessing.get_context("spawn")  # fresh processes, as separate commands are
        barrier, results = context.Barrier(WORKERS), context.Queue()
        procs = [context.Process(target=start_together, args=(url, WORKERS if search else 1, search, barrier, results))
                 for _ in range(WORKERS)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=300) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        errors = [detail for status, detail in outcomes if status == "error"]
        assert not errors, f"{len(errors)} of {WORKERS} workers failed; the first:\n{errors[0]}"
        study = load_study(NAME, url)
        assert study.user_attrs[FINGERPRINT_ATTR] == FINGERPRINT
        if search:
            space = SearchSpace.from_units(SIZES)
            alone = run(sampler(space), space)
            assert {str(result) for _, result in outcomes} == {str(alone.sampler.result(alone))}
            check_finished(study, sampler(space))


@pytest.mark.parametrize("target", ["refused", "missing database"])
def test_only_the_creation_race_is_opened_again(target):
    """A server that refuses, or a database that does not exist, is reported at the first try."""
    if target == "refused":
        url = "postgresql://postgres@127.0.0.1:1/nodb"
    else:
        need_pg()
        url = PG_URL.rsplit("/", 1)[0] + "/aqsvit_no_such_database"
    with pytest.raises(AqsvitError, match="cannot open") as info:
        create_storage(url, workers=2)
    assert not _lost_creation_race(info.value.__cause__)
