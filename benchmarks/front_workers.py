"""Time to a whole front with 1, 2, 4 and 8 workers, when evaluation is the bottleneck (as on GPU
workers), against one search for a single delta.

The model is synthetic so that the schedule alone is measured: the 18 units of the digits model
(their weight counts), an error that each unit adds by its sensitivity times its quantization
noise (pot a little noisier than uniform), and a fixed latency per trial (``--latency`` seconds,
a sleep: the CPU stays free, as it does while a GPU evaluates). Workers are threads, each with its
own sampler on one in-memory study, as separate processes would be on a shared storage. The front's
walks are independent, so workers the tightest open walk cannot keep busy walk the next delta; a
single search's walk can use only as many workers as its step proposes candidates.

    .venv/bin/python benchmarks/front_workers.py [--workers 1 2 4 8] [--latency 0.2]

Writes benchmarks/results/front_workers.md.
"""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import optuna

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table
from aqsvit.search import GreedySampler, SearchSpace
from aqsvit.search.vocabulary import DELTA_ATTR, IDLE_ATTR

RESULTS = Path(__file__).parent / "results"
# the digits model's quantizable layers (weights each), in network order
UNITS = {"stem0": 72, "stem1": 1152, "stem2": 4608, "stem3": 18432, "pos": 36864,
         **{f"b{b}.{name}": size for b in range(2) for name, size in
            (("q", 4096), ("k", 4096), ("v", 4096), ("proj", 4096), ("fc1", 16384), ("fc2", 16384))},
         "head": 640}
FRONT = (0.5, 1.0, 1.5, 2.0, 3.0)


def error(space: SearchSpace, choices: dict) -> float:
    """Accuracy points lost: each unit's sensitivity (the stem and head most) times its noise."""
    def sensitivity(unit: str) -> float:
        return 0.6 if unit.startswith(("stem0", "head")) else 0.25 if unit.startswith("stem") else 0.08
    return sum(sensitivity(u) * 4.0 ** -(space.choice_bits(c) - 2) * (1.3 if c[0] == "pot" else 1.0)
               for u, c in choices.items())


def objective(space: SearchSpace, latency: float, single: float | None):
    def measure(trial: optuna.Trial) -> tuple[float, float]:
        choices = space.suggest(trial)
        time.sleep(latency)
        err = error(space, choices)
        trial.set_user_attr("sensitivity", err)
        delta = single if single is not None else trial.storage.get_trial_system_attrs(trial._trial_id).get(
            DELTA_ATTR, FRONT[-1])
        trial.set_constraint("error", err - delta)
        return -err, space.cost(choices)
    return measure


def time_to_result(workers: int, latency: float, single: float | None) -> tuple[float, int]:
    """Wall seconds until every worker is done, and the trials evaluated (idle ones aside)."""
    space = SearchSpace.from_units(UNITS)
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, study_name="s", directions=["maximize", "minimize"])
    front = () if single is not None else FRONT

    def work(seed: int) -> None:
        sampler = GreedySampler(space, start="sensitivity", front=front, poll_interval=latency / 10, seed=seed)
        study = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
        study.optimize(objective(space, latency, single), n_trials=100000)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    trials = optuna.load_study(study_name="s", storage=storage).trials
    return wall, sum(not t.system_attrs.get(IDLE_ATTR) for t in trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per trial's evaluation")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for name, single in ((f"front {', '.join(f'{d:g}' for d in FRONT)}", None), ("one search, delta 1", 1.0)):
        base = None
        for workers in args.workers:
            wall, trials = time_to_result(workers, args.latency, single)
            base = base or wall
            rows.append((name, workers, trials, f"{wall:.2f}", f"{base / wall:.2f}x"))
            print(rows[-1], flush=True)
    text = ["# A whole front with many workers", "",
            f"Command: `.venv/bin/python benchmarks/front_workers.py --workers {' '.join(map(str, args.workers))} "
            f"--latency {args.latency:g}`. A synthetic model with the digits model's 18 layers and "
            f"{args.latency * 1000:g} ms per evaluation (a sleep, as on a GPU worker), greedy from the sensitivity "
            "start; workers are threads with their own samplers on one study. Speedup: the first row's time over "
            "this one's. A single search's walk keeps only as many workers busy as its step has candidates; a "
            "front's walks are independent, so workers the tightest open walk cannot use walk the next delta.", "",
            markdown_table(("search", "workers", "trials", "time to result s", "speedup"), rows), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "front_workers.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
