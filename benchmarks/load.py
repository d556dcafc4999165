"""Load test of the samplers and storages alone: 8 workers x 500 trials of a cheap synthetic objective.

No model is involved: each worker process asks, evaluates a synthetic constraint over a 48-unit
space (schemes uniform/pot, bits 2..8; each unit needs a seeded number of bits) and tells, 500
times, all on one study with a BeamSampler wide enough that the search does not end first. The
ask + tell time of every trial is the overhead the sampler and storage add to an evaluation; it is
compared with the mean wall time of one real trial of the default digits search (measured here by
running it). Checks: every worker finishes (no deadlock), no assignment finished twice.
Writes benchmarks/results/load.md.

    .venv/bin/python benchmarks/load.py [--workers 8] [--trials 500] [--pg postgresql://...]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table
from aqsvit.search import BeamSampler, SearchSpace
from aqsvit.search.storages import create_storage
from aqsvit.search.vocabulary import IDLE_ATTR, KEY_ATTR

RESULTS = Path(__file__).parent / "results"
UNITS = 48
WIDTH = 16


def synthetic_space() -> tuple[SearchSpace, dict[str, int]]:
    """48 units of growing size; unit u is feasible at ``need[u]`` bits (one more for pot)."""
    space = SearchSpace.from_units({f"layer{i}": 1000 + 37 * i for i in range(UNITS)}, bits=(8, 7, 6, 5, 4, 3, 2))
    rng = random.Random(0)
    return space, {u.name: rng.randint(2, 7) for u in space.units}


def worker(url: str, name: str, workers: int, trials: int, seed: int, out: mp.Queue, untimed: int = 0,
           start=None) -> None:
    """Run ``trials`` trials on study ``name`` and put their times on ``out``; the first ``untimed``
    ones (a worker joining a big study reads all of it once) are run but not timed, and with
    ``start`` (a barrier of all workers) the timed ones start together, so that no worker is timed
    while another still imports and joins."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)  # ask/tell: no heartbeat thread
    space, need = synthetic_space()
    study = optuna.load_study(study_name=name, storage=create_storage(url, workers=workers),
                              sampler=BeamSampler(space, width=WIDTH, seed=seed))
    overheads = []
    for n in range(trials):
        t0 = time.perf_counter()
        trial = study.ask()
        try:
            choices = space.suggest(trial)
        except optuna.TrialPruned:  # the search finished: this trial has no candidate
            study.tell(trial, state=TrialState.PRUNED)
            break
        short = sum(max(0, need[u] + (c[0] == "pot") - c[1]) for u, c in choices.items())
        trial.set_constraint("error", short - 0.5)
        study.tell(trial, (-short, space.cost(choices)))
        if n >= untimed:
            overheads.append(time.perf_counter() - t0)  # all of it: the synthetic objective takes microseconds
        if n == untimed - 1 and start is not None:
            start.wait(timeout=1800)
    out.put(overheads)


def load(url: str, storage_for_reading, workers: int, trials: int) -> dict:
    name = f"load-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=create_storage(url, workers=workers),
                        directions=["maximize", "minimize"])
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(url, name, workers, trials, i, out)) for i in range(workers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    overheads = []
    for _ in procs:  # a worker that never reports within the limit is a deadlock
        overheads += out.get(timeout=1800)
    for p in procs:
        p.join(timeout=60)
    wall = time.perf_counter() - start
    finished = [t for t in optuna.load_study(study_name=name, storage=storage_for_reading).trials
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not t.system_attrs.get(IDLE_ATTR)]
    keys = [t.system_attrs[KEY_ATTR] for t in finished]
    ms = sorted(1000 * x for x in overheads)
    return {"trials": len(finished), "duplicates": len(keys) - len(set(keys)), "wall": wall,
            "median": statistics.median(ms), "p99": ms[int(0.99 * (len(ms) - 1))],
            "deadlock": any(p.is_alive() or p.exitcode != 0 for p in procs)}


def digits_trial_seconds(tmp: str) -> float:
    """Mean wall time of one trial of the default greedy search (sampler and evaluation included)."""
    db = f"sqlite:///{tmp}/digits.db"
    subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", f"storage.url={db}", "search.study_name=digits",
                    "progress=false"],
                   check=True, capture_output=True, text=True)
    trials = [t for t in optuna.load_study(study_name="digits", storage=db).trials
              if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not t.system_attrs.get(IDLE_ATTR)]
    wall = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return wall / len(trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--trials", type=int, default=500, help="trials per worker")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        digits = digits_trial_seconds(tmp)
        log = f"{tmp}/load.log"
        backends = {"postgresql": (args.pg, args.pg),
                    "journal file": (f"journal:///{log}", optuna.storages.JournalStorage(
                        optuna.storages.journal.JournalFileBackend(log)))}
        for (backend, (url, storage)), workers in ((b, w) for b in backends.items() for w in args.workers):
            r = load(url, storage, workers, args.trials)
            rows.append((backend, workers, r["trials"], r["wall"], r["median"], r["p99"],
                         f"{r['median'] / (1000 * digits):.1%}", r["duplicates"], "yes" if r["deadlock"] else "no"))
            print(rows[-1], flush=True)
    text = ["# Load: sampler and storage overhead per trial", "",
            f"Command: `.venv/bin/python benchmarks/load.py --workers {' '.join(map(str, args.workers))} --trials "
            f"{args.trials}`, on this 2-core machine. N worker processes x {args.trials} trials on one study, BeamSampler "
            f"(width {WIDTH}) over a {UNITS}-unit synthetic space (96 parameters per trial), a constraint computed "
            "in microseconds: the worst case for contention, every worker in the storage all the time. Overhead = "
            "the whole trial: `study.ask()`, the suggests (at the first one the sampler reads the study, plans "
            "and claims a candidate), the parameters written to storage, `study.tell()`. "
            f"One trial of the default digits search takes {digits:.2f} s here (mean over its trials, evaluation "
            "included); the share column is the median overhead against it.", "",
            markdown_table(("storage", "workers", "trials", "wall s", "median ms", "p99 ms", "median / digits trial",
                            "duplicates", "deadlock"), rows), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
