"""Worker processes on one study, shared by test_workers, the chaos suite and the fault injection:
start ``aqsvit search``, read its final table, open the study, and check what every multi-worker
run must leave behind (all trials finished, no assignment evaluated twice, no needed candidate lost)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import optuna
import pytest
from optuna.trial import TrialState

from aqsvit.search import Outcome, StepwiseSampler
from aqsvit.search.stepwise.outcome import judge, read_trials
from aqsvit.search.vocabulary import IDLE_ATTR, KEY_ATTR

PG_URL = os.environ.get("AQSVIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
AQSVIT = ("-m", "aqsvit.cli")


def pg_available() -> bool:
    try:
        import sqlalchemy
        with sqlalchemy.create_engine(PG_URL).connect():
            return True
    except Exception:
        return False


def need_pg() -> None:
    if not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI")
        pytest.skip("no PostgreSQL on this machine")


@contextmanager
def new_pg_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database beside ``PG_URL``'s (a unique name), dropped afterwards."""
    need_pg()
    with scratch_database(PG_URL) as url:
        yield url


@contextmanager
def scratch_database(server_url: str, prefix: str = "aqsvit_test") -> Iterator[str]:
    """The URL of a new, empty database on ``server_url``'s PostgreSQL server (also used by
    benchmarks/study_scale.py), dropped afterwards with every connection to it."""
    import sqlalchemy

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')  # workers' connections too
        admin.dispose()


def search_process(*args: str, launcher: Sequence[str] = AQSVIT, env: dict[str, str] | None = None,
                   merge_stderr: bool = False) -> subprocess.Popen:
    """``aqsvit search progress=false *args`` in its own process (``launcher``: what runs the CLI)."""
    return subprocess.Popen([sys.executable, *launcher, "search", "progress=false", *args], text=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE)


def final_table(stdout: str) -> str | None:
    """The chosen assignment's table in a search's output."""
    match = re.search(r"(\| unit .*?)\n\n", stdout, re.S)
    return match.group(1) if match else None


def run_to_end(*args: str, timeout: float = 900) -> str:
    """Run one search to its end (exit 0) and return its final table."""
    proc = search_process(*args)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    table = final_table(out)
    assert table, out
    return table


def study_url(backend: str, folder) -> str:
    """Where a test study lives: a journal file in ``folder``, or the test PostgreSQL."""
    if backend == "postgres":
        need_pg()
        return PG_URL
    return f"journal:///{folder}/study.log"


def load_study(name: str, url: str) -> optuna.Study:
    """The study as the workers wrote it (a journal URL opened as Optuna's journal storage)."""
    if url.startswith("journal:///"):
        path = url[len("journal:///"):]
        url = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    return optuna.load_study(study_name=name, storage=url)


def evaluated(trials: Sequence[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials that evaluated an assignment to the end (COMPLETE or PRUNED, not idle)."""
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and not t.system_attrs.get(IDLE_ATTR)]


def check_unique(study: optuna.Study) -> None:
    keys = [t.system_attrs[KEY_ATTR] for t in evaluated(study.trials)]
    assert len(keys) == len(set(keys)), "an assignment was evaluated twice"


def check_finished(study: optuna.Study, walker: StepwiseSampler) -> tuple[int, int]:
    """Assert that the study ended cleanly; return (FAIL trials, their candidates not evaluated again).

    No trial is left RUNNING or WAITING, no assignment was evaluated twice, and every failed (killed)
    trial's candidate was evaluated again unless the walk no longer needs it (a speculative
    candidate of a step others decided meanwhile): replaying ``walker`` (the study's sampler over
    its space) with either outcome for it must give the same result."""
    trials = study.trials
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)], \
        "study not finished: trials left running"
    check_unique(study)
    keys = {t.system_attrs[KEY_ATTR] for t in evaluated(trials)}
    failed = [t for t in trials if t.state == TrialState.FAIL]
    lost = {t.system_attrs.get(KEY_ATTR) for t in failed} - keys - {None}
    outcomes, _ = judge(read_trials(trials, walker._key))
    final = walker._final_plan(outcomes).result
    for key in lost:
        for feasible in (True, False):
            assert walker._final_plan({**outcomes, key: Outcome(feasible, float("inf"))}).result == final, \
                f"a killed trial's candidate {key} was needed but never evaluated again"
    return len(failed), len(lost)


def walker_of(reference, sampler: str, schemes: Sequence[str] = ("uniform", "pot"),
              bits: Sequence[int] = (8, 6, 5, 4, 3, 2), granularity: str = "layer", width: int = 3) -> StepwiseSampler:
    """The search's sampler over its space (network order), to replay its walk from the study's outcomes."""
    from aqsvit.quant import quantizable_layers
    from aqsvit.search import BeamSampler, GreedySampler, SearchSpace
    space = SearchSpace.from_layers(quantizable_layers(reference.build()), schemes, bits, granularity)
    return GreedySampler(space) if sampler == "greedy" else BeamSampler(space, width=width)
