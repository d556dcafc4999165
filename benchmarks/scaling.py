"""Trials per minute with 1 and 2 workers on one study, on PostgreSQL and on a journal file.

Each configuration runs the default greedy search from scratch (a fresh study) with the CLI, as a
user would (`aqsvit search -m workers=2 ...`), and counts the finished trials over the search's wall
time (first trial start to last trial end). Writes benchmarks/results/scaling.md.

    .venv/bin/python benchmarks/scaling.py [--pg postgresql://postgres@127.0.0.1:5432/test]
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
from aqsvit.search.vocabulary import IDLE_ATTR

RESULTS = Path(__file__).parent / "results"


def run(url: str, storage, workers: int) -> tuple[int, float]:
    name = f"scaling-{uuid.uuid4().hex[:8]}"
    sweep = ["-m", f"workers={workers}"] if workers > 1 else []
    cmd = [sys.executable, "-m", "aqsvit.cli", "search", *sweep, f"storage.url={url}",
           f"search.study_name={name}", "progress=false"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    trials = [t for t in optuna.load_study(study_name=name, storage=storage).trials
              if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not t.system_attrs.get(IDLE_ATTR)]
    wall = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return len(trials), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = {"postgresql": (args.pg, args.pg)}
        log = f"{tmp}/scaling.log"
        backends["journal file"] = (f"journal:///{log}",
                                    optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(log)))
        for backend, (url, storage) in backends.items():
            rates = {}
            for workers in (1, 2):
                n, wall = run(url, storage, workers)
                rates[workers] = 60 * n / wall
                rows.append((backend, workers, n, wall, rates[workers],
                             f"{rates[workers] / (workers * rates[1]):.0%}"))
    text = ["# Scaling: trials per minute", "",
            "Command: `.venv/bin/python benchmarks/scaling.py`. Default greedy search on digits, fresh study each "
            "row, on this 2-core machine (each worker gets cores / workers torch threads). Efficiency = rate / "
            "(workers x 1-worker rate). More workers also run more trials: they evaluate the current step's "
            "next candidates speculatively.", "",
            markdown_table(("storage", "workers", "trials", "wall s", "trials / min", "efficiency"), rows), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scaling.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
