"""Greedy and beam search against what a user would pick instead, side by side in one run.

Same model, data, search space, delta and wall-time budget for every method: GreedySampler,
BeamSampler (B = 2, 3), Optuna's TPE, NSGA-II and random search (plain: no drift gate and no
staged check; and with aqsvit's pruner), the hand-made baseline (one scheme and width for the whole
network) and a HAWQ-V3-style baseline (single-layer sensitivities from the all-8-bit model, an
integer program picks the least memory whose summed drops stay within delta, verified, then
repaired by the cheapest upgrades until feasible). Each over several seeds (the sampler's seed; the
data split and reference stay fixed). Writes benchmarks/results/compare.md, compare.html and
compare_<model>.png (best feasible weight compression against wall time; --name changes the stem).

Every (model, seed) set of runs, and each model's seed-free baselines, is kept as JSON under
results/compare_runs/, so an interrupted benchmark goes on where it stopped, and seeds or methods
of one seed can run in separate processes (one per core with --threads 1: each adds its runs to
what the others stored meanwhile) and then be assembled by one call over all seeds (--assemble:
every method stored for all of them, nothing computed).

    .venv/bin/python benchmarks/compare.py [--models spikformer_digits spikformer_wide] [--seeds 0 1 2]
    .venv/bin/python benchmarks/compare.py --quick     # a minute: checks the script, not a benchmark
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import plotly.graph_objects as go
import torch
from optuna.trial import TrialState
from scipy.optimize import Bounds, LinearConstraint, milp

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table
from aqsvit.report.figures import write_html, write_pngs
from aqsvit.search.baselines import one_width_baseline
from aqsvit.search.stepwise import AutoStart
from aqsvit.search.evaluator import Evaluator
from aqsvit.search import setup
from aqsvit.search.space import SearchSpace
from aqsvit.search.vocabulary import DROP_ATTR, IDLE_ATTR, SCREENED_ATTR
from aqsvit.settings import ModelSettings, SearchSettings, Settings

RESULTS = Path(__file__).parent / "results"
TARGET_X = 8.0


@dataclass
class Run:
    """One method, one seed: (seconds since start, weight compression, drop) of every full evaluation."""

    method: str
    seed: int
    evaluations: list[tuple[float, float, float]] = field(default_factory=list)
    trials: int = 0
    full: int = 0
    pruned: int = 0
    wall: float = 0.0  # the whole run, seconds

    def best(self, delta: float) -> tuple[float, float, float] | None:
        """(compression, drop, seconds to reach it) of the smallest feasible evaluation."""
        feasible = [(x, d, t) for t, x, d in self.evaluations if d <= delta]
        if not feasible:
            return None
        x = max(f[0] for f in feasible)
        return next((x_, d, t) for x_, d, t in sorted(feasible, key=lambda f: f[2]) if x_ == x)

    def first_reach(self, delta: float, target: float = TARGET_X) -> float | None:
        """Seconds until a feasible evaluation first reached ``target`` compression (None: never)."""
        return next((t for t, x, d in sorted(self.evaluations) if d <= delta and x >= target - 1e-9), None)

    def best_by(self, delta: float, seconds: float) -> float:
        """The best feasible compression found within ``seconds`` (0 when none)."""
        return max((x for t, x, d in self.evaluations if d <= delta and t <= seconds), default=0.0)

    @classmethod
    def from_json(cls, stored: dict) -> Run:
        return cls(**{**stored, "evaluations": [tuple(e) for e in stored["evaluations"]]})


def optuna_run(evaluator: Evaluator, key: str, method: str, sampler: str, seed: int, delta: float,
               pruned: bool, budget: float, width: int = 3, n_trials: int = 200, start: str = "precise") -> Run:
    settings = SearchSettings(sampler=sampler, sampler_options={"width": width} if sampler == "beam" else {}, start=start, delta=delta, seed=seed,
                              pruner="drift" if pruned else "none", staged=pruned, study_name=method,
                              n_trials=n_trials, storage_url="sqlite:///:memory:")
    t0 = time.time()  # the setup (drift reference, probe order) counts: a user waits for it too
    search = setup.assemble(evaluator, settings, key, storage=optuna.storages.InMemoryStorage())
    stepwise = sampler in ("greedy", "beam")
    search.study.optimize(search.objective, n_trials=None if stepwise else n_trials, timeout=budget,
                          gc_after_trial=False)
    run, record = Run(method, seed), 0.0
    for t in sorted(search.study.trials, key=lambda t: t.datetime_complete or t.datetime_start):
        if t.system_attrs.get(IDLE_ATTR) or t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        run.trials += 1
        run.pruned += t.state == TrialState.PRUNED
        if t.state != TrialState.COMPLETE:
            continue
        x, drop = t.user_attrs["weight_compression"], t.user_attrs[DROP_ATTR]
        if t.user_attrs.get(SCREENED_ATTR):
            # accepted on the screen at this time; whether rightly, the whole split says (measured
            # here, outside the timed run). Only a new record can change a best-so-far figure, so
            # the others are left unmeasured (NaN: never counted as feasible).
            drop = (evaluator.measure(search.space.assignment(search.space.choices_from_params(t.params))).drop
                    if x > record else float("nan"))
        else:
            run.full += 1
        if drop <= delta:
            record = max(record, x)
        run.evaluations.append((t.datetime_complete.timestamp() - t0, x, drop))
    ends = [t.datetime_complete.timestamp() for t in search.study.trials if t.datetime_complete]
    run.wall = max(ends) - t0 if ends else 0.0
    return run


def hand_run(evaluator: Evaluator, schemes, bits) -> Run:
    started = time.perf_counter()
    run = Run("one width for all", 0)
    for scheme, b, m in one_width_baseline(evaluator, schemes, bits)[1:]:
        run.evaluations.append((time.perf_counter() - started, m.weight_compression, m.drop))
    run.trials = run.full = len(run.evaluations)
    run.wall = time.perf_counter() - started
    return run


def hawq_runs(evaluator: Evaluator, space: SearchSpace, deltas: tuple[float, ...]) -> dict[float, list[Run]]:
    """HAWQ-V3-style per delta: one sensitivity pass, then an integer program, verified, and repaired.

    The sensitivities do not depend on delta, so they are measured once and their time is counted in
    every delta's runs.
    """
    started = time.perf_counter()
    base = {u.name: ("uniform", 8) for u in space.units}
    base_drop = evaluator.measure(space.assignment(base)).drop
    options = [("uniform", 8), *[c for c in space.candidates() if c != ("uniform", 8)]]
    drops, costs, evals = {}, {}, 1
    for unit in space.units:
        for choice in options:
            costs[unit.name, choice] = unit.numel * space.choice_bits(choice)
            if choice == ("uniform", 8):
                drops[unit.name, choice] = 0.0
                continue
            m = evaluator.measure(space.assignment({**base, unit.name: choice}))
            drops[unit.name, choice] = max(0.0, m.drop - base_drop)
            evals += 1
    sensitivity_s = time.perf_counter() - started
    keys = list(drops)
    c = np.array([costs[k] for k in keys], dtype=float)
    one_each = np.array([[1.0 if k[0] == u.name else 0.0 for k in keys] for u in space.units])
    summed = np.array([[drops[k] for k in keys]])
    runs = {}
    for delta in deltas:
        started, n = time.perf_counter() - sensitivity_s, evals
        res = milp(c, integrality=np.ones(len(keys)), bounds=Bounds(0, 1),
                   constraints=[LinearConstraint(one_each, 1, 1),
                                LinearConstraint(summed, 0, max(0.0, delta - base_drop))])
        pick = {keys[i][0]: keys[i][1] for i in np.flatnonzero(res.x > 0.5)}
        m = evaluator.measure(space.assignment(pick))
        n += 1
        picked = Run(f"HAWQ-V3-style (as picked: {m.weight_compression:.2f}x, drop {m.drop:.2f})", 0,
                     [(time.perf_counter() - started, m.weight_compression, m.drop)], n, n, 0,
                     time.perf_counter() - started)
        # repair: give the unit whose current choice has the largest measured drop the next dearer
        # choice (the lower-drop one of a memory tie), one at a time, until the whole assignment is within delta
        while m.drop > delta:
            upgradable = [u for u in space.units if any(costs[u.name, ch] > costs[u.name, pick[u.name]] for ch in options)]
            if not upgradable:
                break
            unit = max(upgradable, key=lambda u: drops[u.name, pick[u.name]])
            dearer = [ch for ch in options if costs[unit.name, ch] > costs[unit.name, pick[unit.name]]]
            pick[unit.name] = min(dearer, key=lambda ch: (costs[unit.name, ch], drops[unit.name, ch]))
            m = evaluator.measure(space.assignment(pick))
            n += 1
        repaired = Run("HAWQ-V3-style (repaired)", 0, [(time.perf_counter() - started, m.weight_compression, m.drop)],
                       n, n, 0, time.perf_counter() - started)
        runs[delta] = [picked, repaired]
    return runs


def summarize(runs: list[Run], delta: float) -> list[tuple]:
    rows = []
    for method in dict.fromkeys(r.method for r in runs):
        mine = [r for r in runs if r.method == method]
        bests = [r.best(delta) for r in mine]
        xs = [b[0] for b in bests if b]
        cell = lambda v: "-" if not v else (f"{statistics.mean(v):.2f}" + (f" ± {statistics.stdev(v):.2f}" if len(v) > 1 else ""))  # noqa: E731
        reach = [r.first_reach(delta) for r in mine]
        rows.append((method, len(mine), f"{len(xs)}/{len(mine)}", cell(xs), cell([32 / x for x in xs]),
                     cell([b[1] for b in bests if b]), cell([r.trials for r in mine]), cell([r.full for r in mine]),
                     cell([r.pruned for r in mine]), cell([r.wall for r in mine]), cell([b[2] for b in bests if b]),
                     cell([t for t in reach if t is not None]) + (f" ({sum(t is None for t in reach)} never)"
                                                                  if any(t is None for t in reach) else "")))
    return rows


HEADERS = ("method", "seeds", "feasible", "weight x", "eff. bits", "drop", "trials", "full evals", "pruned",
           "wall s", "s to result", f"s to {TARGET_X:.0f}x")


Runs = dict[float, list[Run]]  # by delta


def stored(path: Path, config: dict) -> dict[str, Runs]:
    """The runs stored at ``path`` for exactly this config, by method (none for another config)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if data["config"] != config:
        return {}
    return {m: {float(d): [Run.from_json(r) for r in rs] for d, rs in per.items()} for m, per in data["methods"].items()}


def cached(path: Path, config: dict, methods: list[str], compute: Callable[[list[str]], dict[str, Runs]] | None) -> Runs:
    """The runs of ``methods`` stored at ``path`` for exactly this config; the missing methods'
    runs are computed now (``compute(missing)``, by method) and added there. Delete a file, or
    change the config, to measure its runs again. ``compute=None``: nothing may be missing."""
    by_method = stored(path, config)
    missing = [m for m in methods if m not in by_method]
    if missing and compute is None:
        raise SystemExit(f"{path}: no stored runs of {', '.join(missing)} for reference {config['reference']}")
    if missing:
        computed = compute(missing)
        # another process (other methods of the same seed) may have stored runs meanwhile: keep them
        by_method = {**stored(path, config), **by_method, **computed}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps({"config": config, "methods": {
            m: {str(d): [asdict(r) for r in rs] for d, rs in per.items()} for m, per in by_method.items()}}))
        partial.replace(path)
    runs: Runs = {}
    for method in methods:
        for d, rs in by_method[method].items():
            runs.setdefault(d, []).extend(rs)
    return runs


# (name, sampler, beam width, start) of our searches; Optuna's samplers by (name, sampler)
STEPWISE_METHODS = [("greedy", "greedy", 3, "precise"), ("beam B=2", "beam", 2, "precise"),
                    ("beam B=3", "beam", 3, "precise"), ("greedy, one-width start", "greedy", 3, "one_width"),
                    ("beam B=3, one-width start", "beam", 3, "one_width"),
                    ("greedy, sensitivity start", "greedy", 3, "sensitivity"),
                    ("beam B=3, sensitivity start", "beam", 3, "sensitivity")]
OPTUNA_METHODS = [("TPE", "tpe"), ("NSGA-II", "nsga2"), ("random", "random")]
METHODS = [m[0] for m in STEPWISE_METHODS + OPTUNA_METHODS]


def seed_runs(evaluator: Evaluator, key: str, seed: int, budget: float, deltas: tuple[float, ...],
              quick: bool, methods: list[str]) -> dict[str, Runs]:
    """Greedy and beam at every delta; Optuna's samplers at the first delta, plain and with our
    pruner (their plain run's rows at the other deltas are read from the same trials)."""
    runs: dict[str, Runs] = {}
    for name, sampler, width, start in STEPWISE_METHODS:
        if name in methods:
            runs[name] = {d: [optuna_run(evaluator, key, name, sampler, seed, d, True, budget, width, start=start)]
                          for d in deltas}
    for name, sampler in OPTUNA_METHODS:
        if name in methods:
            plain, pruned = (optuna_run(evaluator, key, f"{name} + drift pruner" if gated else name, sampler, seed,
                                        deltas[0], gated, budget, n_trials=20 if quick else 200)
                             for gated in (False, True))
            runs[name] = {d: [plain, pruned] if d == deltas[0] else [plain] for d in deltas}
    return runs


def fixed_runs(evaluator: Evaluator, space: SearchSpace, deltas: tuple[float, ...], quick: bool) -> dict[float, list[Run]]:
    """The seed-free baselines: one width for all, and (not in --quick) HAWQ-V3-style."""
    hand = hand_run(evaluator, ("uniform", "pot"), (8, 6, 5, 4, 3, 2))
    hawq = {} if quick else hawq_runs(evaluator, space, deltas)
    return {d: [hand, *hawq.get(d, [])] for d in deltas}


def targets(runs: list[Run], delta: float) -> list[str]:
    """The issue's targets, per seed, read off the runs: where greedy and beam win and where they lose."""
    def by(method: str) -> dict[int, Run]:
        return {r.seed: r for r in runs if r.method == method}
    tpe, lines = by("TPE"), []
    for method in [m[0] for m in STEPWISE_METHODS]:
        mine = by(method)
        for seed in sorted(mine.keys() & tpe.keys()):
            m, t = mine[seed], tpe[seed]
            tpe_best, x = t.best(delta), m.best_by(delta, m.wall)
            if tpe_best is None:
                lines.append(f"- {method}, seed {seed}: TPE's whole run ({t.trials} trials) found nothing within "
                             f"delta; {method} {x:.2f}x in {m.wall:.1f} s.")
                continue
            reach = m.first_reach(delta, tpe_best[0])
            when = (f"reached it after {reach:.1f} s = {reach / t.wall:.2f} of TPE's {t.wall:.0f} s"
                    if reach is not None else f"never reached it (its best {x:.2f}x)")
            lines.append(f"- {method}, seed {seed}: TPE's whole run ({t.trials} trials) found {tpe_best[0]:.2f}x; "
                         f"{method} {when}. At {method}'s {m.wall:.1f} s TPE had {t.best_by(delta, m.wall):.2f}x "
                         f"against {x:.2f}x.")
        xs = [x for x, _, _ in filter(None, (r.best(delta) for r in mine.values()))]
        if method.startswith("beam") and mine:
            lines.append(f"- {method}: {min(xs, default=0):.2f}-{max(xs, default=0):.2f}x over {len(mine)} seeds "
                         f"({'meets' if len(xs) == len(mine) and min(xs) >= 12 else 'misses'} 12x in every seed).")
    return lines


def default_methods(start: str) -> list[str]:
    """The rows of the default greedy and beam (beam B=3, aqsvit/conf/sampler/beam.yaml) for the start
    ``search.start=auto`` resolves to."""
    return [name for name, sampler, width, s in STEPWISE_METHODS if s == start and (sampler == "greedy" or width == 3)]


PEERS = ("HAWQ-V3-style (repaired)", "TPE", "NSGA-II", "random")


def verdict(runs: list[Run], delta: float, defaults: list[str]) -> str:
    """Whether the better default method's worst seed is ahead of every peer's best seed."""
    def seeds(method: str) -> list[float]:
        return [b[0] if b else 0.0 for b in (r.best(delta) for r in runs if r.method == method)]
    ours = max((d for d in defaults if seeds(d)), key=lambda d: min(seeds(d)), default=None)
    if ours is None:
        return f"- delta {delta}: no run of the default methods ({', '.join(defaults)})."
    worst = min(seeds(ours))
    peers = {p: max(seeds(p)) for p in PEERS if seeds(p)}
    behind = [p for p, x in peers.items() if x >= worst]
    against = ", ".join(f"{p} {x:.2f}x" for p, x in peers.items())
    return (f"- delta {delta}: the default {ours}, worst seed {worst:.2f}x, against the best seed of {against}: "
            + (f"behind or level with {', '.join(behind)}." if behind else "ahead of every one."))


def compare_model(model: str, seeds: list[int], budget: float, deltas: tuple[float, ...], quick: bool,
                  threads: int, store: Path, only: list[str] | None = None, assemble: bool = False
                  ) -> tuple[str, go.Figure]:
    """One model's section of compare.md and its figure. ``assemble``: table every method stored
    for all ``seeds`` of this reference and compute nothing (runs made by separate calls)."""
    torch.set_num_threads(threads)
    settings = Settings(model=ModelSettings(model), progress=False)
    ref = setup.reference(settings, searchable=False)
    evaluator, key = ref.evaluator(settings, "cpu"), ref.key
    space = SearchSpace.from_layers(evaluator.layers, ("uniform", "pot"), (8, 6, 5, 4, 3, 2))
    config = {"model": model, "reference": key, "deltas": list(deltas), "quick": quick, "threads": threads}
    baselines = cached(store / f"{model}-baselines.json", config, ["fixed"],
                       None if assemble else lambda _: {"fixed": fixed_runs(evaluator, space, deltas, quick)})
    seed_files = {seed: (store / f"{model}-{budget:g}s-seed{seed}.json", {**config, "budget": budget, "seed": seed})
                  for seed in seeds}
    if assemble:  # every file read once here; cached() below reads each again for its runs
        kept = {seed: stored(*seed_files[seed]) for seed in seeds}
        empty = [str(seed_files[seed][0]) for seed in seeds if not kept[seed]]
        if empty:
            raise SystemExit(f"{', '.join(empty)}: no stored runs for reference {key}")
        methods = [m for m in METHODS if all(m in kept[seed] for seed in seeds)]
    else:
        methods = only or (["greedy", "TPE"] if quick else METHODS)
    per_seed = []
    for seed in seeds:
        per_seed.append(cached(*seed_files[seed], methods, None if assemble else
                               lambda todo: seed_runs(evaluator, key, seed, budget, deltas, quick, todo)))
        print(f"{model}: seed {seed} done", flush=True)
    runs = {d: [r for one in per_seed for r in one[d]] + baselines[d] for d in deltas}
    start = AutoStart().resolve(space).name
    defaults = default_methods(start)
    text = [f"## {model} ({len(evaluator.layers)} quantizable layers, FP {evaluator.fp_accuracy:.2f}%, "
            f"{budget:.0f} s budget per method and seed)", "",
            f"Reference `{key}`. The default start here (`search.start=auto`) is `{start}`: the default greedy and "
            f"beam are the rows {' and '.join(repr(d) for d in defaults)}.", "",
            *[verdict(runs[d], d, defaults) for d in deltas], ""]
    for delta in deltas:
        text += [f"Delta = {delta} points:", "", markdown_table(HEADERS, summarize(runs[delta], delta)), ""]
    text += [f"Targets at delta {deltas[0]}:", "", *targets(runs[deltas[0]], deltas[0]), ""]
    fig = go.Figure()
    for method in dict.fromkeys(r.method for r in runs[deltas[0]]):
        r = next(r for r in runs[deltas[0]] if r.method == method)  # the first seed
        best, xs, ts = 0.0, [], []
        for t, x, d in sorted(r.evaluations):
            if d <= deltas[0] and x > best:
                best = x
                xs.append(x)
                ts.append(t)
        if ts:
            fig.add_trace(go.Scatter(x=ts, y=xs, mode="lines+markers", name=method, line_shape="hv"))
    fig.update_layout(title=f"{model}: best feasible weight compression (delta {deltas[0]}) against wall time, "
                            f"seed {seeds[0]}", xaxis_title="wall time s", yaxis_title="weight compression x")
    return "\n".join(text), fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["spikformer_digits", "spikformer_wide"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampler seeds")
    parser.add_argument("--budget", type=float, nargs="+", default=[75.0, 300.0],
                        help="wall-time budget per method and seed, seconds: one, or one per model")
    parser.add_argument("--deltas", type=float, nargs="+", default=[1.0, 1.5])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 when running seeds side by side)")
    parser.add_argument("--methods", nargs="+", default=None, choices=METHODS, metavar="METHOD",
                        help=f"only these searches ({', '.join(map(repr, METHODS))}); the seed-free baselines "
                             "always run")
    parser.add_argument("--assemble", action="store_true",
                        help="table every method stored for all the seeds of this reference, compute nothing "
                             "(after runs made by separate calls, e.g. one process per core)")
    parser.add_argument("--quick", action="store_true", help="one seed, few trials: checks the script works")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--name", default=None, help="file stem of the outputs (default compare)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.assemble and args.methods:
        parser.error("--methods: does not apply with --assemble, which tables every method stored for all seeds")
    if args.quick:
        args.models, args.seeds, args.budget = ["spikformer_digits"], [0], [30.0]
    if len(args.budget) not in (1, len(args.models)):
        parser.error(f"--budget: give one value or one per model ({len(args.models)}), not {len(args.budget)}")
    budgets = args.budget * len(args.models) if len(args.budget) == 1 else args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sections, figures = [], {}
    for model, budget in zip(args.models, budgets):
        text, fig = compare_model(model, args.seeds, budget, tuple(args.deltas), args.quick, args.threads,
                                  out / "compare_runs", args.methods, args.assemble)
        sections.append(text)
        figures[f"{args.name or 'compare'}_{model}"] = fig
        print(text, flush=True)
    intro = (f"Command: `.venv/bin/python benchmarks/compare.py --models {' '.join(args.models)} --seeds "
             f"{' '.join(map(str, args.seeds))} --budget {' '.join(f'{b:.0f}' for b in budgets)} --deltas "
             f"{' '.join(map(str, args.deltas))} --threads {args.threads}"
             f"{' --methods ' + shlex.join(args.methods) if args.methods else ''}"
             f"{' --assemble' if args.assemble else ''}"
             f"{' --out ' + shlex.quote(args.out) if args.out != str(RESULTS) else ''}"
             f"{' --name ' + shlex.quote(args.name) if args.name else ''}` on this 2-core machine (the raw runs are "
             "in compare_runs/). Every method gets the same space (uniform/pot x 8,6,5,4,3,2 bits per layer), the "
             "same reference and data, and the model's wall budget per method and seed (Optuna's samplers stop at "
             "200 trials or the budget). Mean ± standard deviation over seeds. 'feasible': seeds with a feasible "
             "result. Greedy and beam run at each delta; TPE, NSGA-II and random run at the first delta and their "
             "other rows are read from the same trials (plain variants only: the pruner stops what is over the "
             "first delta). 'pruned' counts the sensitivity start's probes too (one calibration batch each, "
             "stopped by design). 's to result': wall time until the method's best feasible assignment was evaluated; "
             "HAWQ counts its sensitivity pass. Greedy's and beam's candidates accepted on the screen are measured "
             "on the whole split afterwards, outside the timed run, and count with that drop.")
    name = args.name or "compare"  # file stem of the table, the HTML and each model's PNG
    (out / f"{name}.md").write_text("\n\n".join(["# Compare: greedy and beam against the alternatives", intro, *sections]) + "\n")
    write_html(out / f"{name}.html", "aqsvit compare", list(figures.values()))
    write_pngs(out, figures)
    print(f"wrote {out}/{name}.md, {name}.html, PNGs")


if __name__ == "__main__":
    main()
