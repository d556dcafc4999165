"""Study scale: does the per-trial overhead stay flat as the study grows?

For each storage (SQLite, the journal file, PostgreSQL) and study size (100, 1,000, 10,000
trials): a new study is filled with that many finished trials of the 48-unit synthetic space of
``benchmarks/load.py`` (random assignments, written as ``Study.add_trials`` writes them, with the key and
attributes a stepwise trial carries), then N worker processes run ``load.py``'s worker on it:
BeamSampler asks, the 96 parameters, a synthetic constraint, tell; the time of each whole trial is
its overhead (after one untimed trial per worker: joining, it reads the whole study once; the timed
trials of all workers start together). SQLite
serves one worker only. Writes benchmarks/results/study_scale.md.

    .venv/bin/python benchmarks/study_scale.py [--sizes 100 1000 10000] [--workers 1 8] [--trials 40] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import sqlalchemy
from optuna.distributions import distribution_to_json
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState, create_trial
from sqlalchemy import insert

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table
from aqsvit.search.storages import create_storage
from aqsvit.search.vocabulary import DRIFT_ATTR, KEY_ATTR

from load import UNITS, WIDTH, synthetic_space, worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from worker_tools import scratch_database  # noqa: E402  (the tests' helper: a new PostgreSQL database)

RESULTS = Path(__file__).parent / "results"


def synthetic_trials(size: int, seed: int) -> list[FrozenTrial]:
    """``size`` finished trials of random assignments (COMPLETE, a fifth PRUNED), each with its key."""
    space, need = synthetic_space()
    rng = random.Random(seed)
    distributions, options = space.distributions(), space.candidates()
    trials = []
    for _ in range(size):
        choices = {u.name: rng.choice(options) for u in space.units}
        params = space.params(choices)
        short = sum(max(0, need[u] + (c[0] == "pot") - c[1]) for u, c in choices.items())
        pruned = rng.random() < 0.2
        trials.append(create_trial(
            state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
            values=None if pruned else [-short, space.cost(choices)],
            params=params, distributions={n: distributions[n] for n in params},
            user_attrs={DRIFT_ATTR: float(short)}, system_attrs={KEY_ATTR: space.key(choices)}))
    return trials


def fill(study: optuna.Study, size: int, seed: int) -> None:
    """Add :func:`synthetic_trials` to ``study``, a new study: ``Study.add_trials`` on a journal
    file; on SQLite and PostgreSQL, whose ``add_trials`` takes a transaction per trial (about 0.1 s
    here: 10,000 trials would take 20 minutes), the same rows in one transaction per 500 trials."""
    trials = synthetic_trials(size, seed)
    backend = getattr(study._storage, "_backend", None)
    if not isinstance(backend, RDBStorage):
        study.add_trials(trials)
        return
    with _create_scoped_session(backend.scoped_session, True) as session:
        for start in range(0, size, 500):
            chunk = trials[start:start + 500]
            rows = [models.TrialModel(study_id=study._study_id, number=start + i, state=t.state,
                                      datetime_start=t.datetime_start, datetime_complete=t.datetime_complete)
                    for i, t in enumerate(chunk)]
            session.add_all(rows)
            session.flush()  # the trial ids
            params, values, user_attrs, system_attrs = [], [], [], []
            for row, t in zip(rows, chunk):
                params += [{"trial_id": row.trial_id, "param_name": name, "distribution_json":
                            distribution_to_json(t.distributions[name]),
                            "param_value": t.distributions[name].to_internal_repr(value)}
                           for name, value in t.params.items()]
                for objective, value in enumerate(t.values or []):
                    stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                    values.append({"trial_id": row.trial_id, "objective": objective, "value": stored,
                                   "value_type": kind})
                user_attrs += [{"trial_id": row.trial_id, "key": k, "value_json": json.dumps(v)}
                               for k, v in t.user_attrs.items()]
                system_attrs += [{"trial_id": row.trial_id, "key": k, "value_json": json.dumps(v)}
                                 for k, v in t.system_attrs.items()]
            for model, rows_of in ((models.TrialParamModel, params), (models.TrialValueModel, values),
                                   (models.TrialUserAttributeModel, user_attrs),
                                   (models.TrialSystemAttributeModel, system_attrs)):
                if rows_of:
                    session.execute(insert(model), rows_of)


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """``url`` itself for a file; for a PostgreSQL server, a new database on it (dropped afterwards),
    so that no row stays from an earlier run: a study among millions of old rows reads differently."""
    if not url.startswith("postgresql"):
        yield url
        return
    with scratch_database(url, prefix="aqsvit_scale") as fresh:
        yield fresh


def analyze(url: str) -> None:
    """PostgreSQL: refresh the planner's statistics of the filled tables, as autovacuum does on a
    server as tables grow (this machine's server runs with autovacuum off)."""
    if url.startswith("postgresql"):
        engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
        engine.dispose()


def measure(server_url: str, size: int, workers: int, trials: int) -> dict:
    with fresh_database(server_url) as url:
        return measure_on(url, size, workers, trials)


def measure_on(url: str, size: int, workers: int, trials: int) -> dict:
    """Fill a new study on ``url`` with ``size`` trials, then time ``trials`` trials per worker."""
    name = f"scale-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=create_storage(url, workers=workers),
                                directions=["maximize", "minimize"])
    started = time.perf_counter()
    fill(study, size, seed=size)
    analyze(url)
    filled = time.perf_counter() - started
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(workers)
    procs = [ctx.Process(target=worker, args=(url, name, workers, trials + 1, i, out, 1, start))
             for i in range(workers)]
    for p in procs:
        p.start()
    overheads = []
    for _ in procs:
        overheads += out.get(timeout=1800)
    for p in procs:
        p.join(timeout=60)
    return {"ms": [1000 * x for x in overheads], "fill": filled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--trials", type=int, default=40, help="timed trials per worker and round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the sizes, each size a new study")
    parser.add_argument("--storages", nargs="+", default=["sqlite", "journal", "postgresql"])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for storage in args.storages:
            for workers in args.workers:
                if storage == "sqlite" and workers > 1:
                    continue
                # --repeats rounds over the sizes in turn, each a new study: the machine's drift
                # within a run falls on every size alike; a row pools its rounds' trials
                timed: dict[int, list[float]] = {size: [] for size in args.sizes}
                fills: dict[int, list[float]] = {size: [] for size in args.sizes}
                for _ in range(args.repeats):
                    for size in args.sizes:
                        url = {"sqlite": f"sqlite:///{tmp}/{uuid.uuid4().hex[:8]}.db",
                               "journal": f"journal:///{tmp}/{uuid.uuid4().hex[:8]}.log",
                               "postgresql": args.pg}[storage]
                        r = measure(url, size, workers, args.trials)
                        timed[size] += r["ms"]
                        fills[size].append(r["fill"])
                first = statistics.median(timed[args.sizes[0]])
                for size in args.sizes:
                    ms = sorted(timed[size])
                    rows.append((storage, workers, size, len(ms), f"{statistics.median(ms):.1f}",
                                 f"{ms[int(0.99 * (len(ms) - 1))]:.1f}", f"{statistics.median(ms) / first:.2f}",
                                 f"{statistics.mean(fills[size]):.0f}"))
                    print(rows[-1], flush=True)
    command = (f".venv/bin/python benchmarks/study_scale.py --sizes {' '.join(map(str, args.sizes))} --workers "
               f"{' '.join(map(str, args.workers))} --trials {args.trials} --repeats {args.repeats} --storages {' '.join(args.storages)}")
    text = ["# Study scale: per-trial overhead against the study's size", "",
            f"Command: `{command}`, on this 2-core machine (PostgreSQL on the same machine, a new database per row, "
            "analyzed after the fill as autovacuum would). Each row pools `--repeats` rounds, the sizes taken in turn "
            "in each round. Each round of a row: a new study "
            f"filled with `study size` finished trials of random assignments of the {UNITS}-unit synthetic space "
            "(benchmarks/load.py's, 96 parameters per trial), then `workers` processes each run one untimed trial "
            "(a worker joining the study reads all of it once), wait for each other, and time the next ones: "
            f"`study.ask()`, the 96 suggests (the BeamSampler, width {WIDTH}, reads the study, plans and claims a "
            "candidate), a constraint computed in microseconds, `study.tell()`. 'x first size': the median against "
            "the same storage and workers at the smallest size. 'fill s': writing the study (mean of the rounds), not timed.", "",
            markdown_table(("storage", "workers", "study size", "timed trials", "median ms", "p99 ms",
                            "x first size", "fill s"), rows), ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "study_scale.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
