"""Trials per minute and time to the result with 1, 2 and 4 workers on one study, on PostgreSQL
and on a journal file.

Each configuration runs the default search (greedy, ``search.start=auto``: the sensitivity start on
digits) from scratch (a fresh study) with the CLI, as a user would (`aqsvit search -m workers=2
...`), and counts the finished trials over the search's wall time (first trial start to last trial
end: the time to the result). Writes benchmarks/results/scaling.md; with ``--front`` (a front search
over those deltas instead, its result the pick at delta 1) benchmarks/results/scaling_front.md.

    .venv/bin/python benchmarks/scaling.py [--workers 1 2 4] [--pg postgresql://postgres@127.0.0.1:5432/test]
    .venv/bin/python benchmarks/scaling.py --workers 1 2 --front 0 0.5 1 1.5 2 3
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import optuna
from optuna.trial import TrialState

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table
from aqsvit.search.front import pick
from aqsvit.search.vocabulary import IDLE_ATTR

RESULTS = Path(__file__).parent / "results"
DELTA = 1.0  # the default accuracy budget, in points


def run(url: str, storage, workers: int, front: list[float]) -> tuple[int, float, float]:
    """Search (a front's, with ``front``) on a fresh study: (finished trials, wall seconds, the
    memory in KiB of the smallest assignment measured within delta 1)."""
    name = f"scaling-{uuid.uuid4().hex[:8]}"
    sweep = ["-m", f"workers={workers}"] if workers > 1 else []
    walks = [f"search.front=[{','.join(f'{d:g}' for d in front)}]"] if front else []
    cmd = [sys.executable, "-m", "aqsvit.cli", "search", *sweep, f"delta={DELTA}", f"storage.url={url}",
           f"search.study_name={name}", "progress=false", *walks]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    trials = [t for t in optuna.load_study(study_name=name, storage=storage).trials
              if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not t.system_attrs.get(IDLE_ATTR)]
    wall = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return len(trials), wall, pick(trials, DELTA).values[1] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--front", type=float, nargs="*", default=[], help="a front search over these deltas")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = {"postgresql": (args.pg, args.pg)}
        log = f"{tmp}/scaling.log"
        backends["journal file"] = (f"journal:///{log}",
                                    optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(log)))
        for backend, (url, storage) in backends.items():
            rates = {}
            for workers in args.workers:
                n, wall, kib = run(url, storage, workers, args.front)
                rates[workers] = 60 * n / wall
                rows.append((backend, workers, n, wall, rates[workers],
                             f"{rates[workers] / (workers * rates[args.workers[0]]):.0%}", f"{kib:.2f}"))
    front = f" --front {' '.join(f'{d:g}' for d in args.front)}" if args.front else ""
    searched = (f"Front search (`search.front=[{','.join(f'{d:g}' for d in args.front)}]`, greedy, the sensitivity "
                "start; its walks are independent, so workers one walk cannot keep busy walk the next delta)"
                if args.front else "Default search (greedy, `search.start=auto`: the sensitivity start)")
    text = [f"# Scaling{': a front search' if args.front else ''}: trials per minute", "",
            f"Command: `.venv/bin/python benchmarks/scaling.py --workers {' '.join(map(str, args.workers))}{front}`. "
            f"{searched} on digits, fresh study each row, on this 2-core machine (each worker gets cores / "
            "workers torch threads). Time to result: the first trial's start to the last trial's end. "
            "Efficiency = rate / (workers x the first row's rate per worker). More workers also run more "
            "trials: they evaluate the current step's next candidates speculatively. Result KiB: the smallest "
            "assignment measured within Δ = 1 (the same in every row: workers change how fast, not what, the "
            "search finds).", "",
            markdown_table(("storage", "workers", "trials", "time to result s", "trials / min", "efficiency",
                            "result KiB"), rows), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / ("scaling_front.md" if args.front else "scaling.md")).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
