"""Greedy and beam search against what a user would pick instead, side by side in one run.

Same model, data, search space, delta and wall-time budget for every method: GreedySampler,
BeamSampler (B = 2, 3), Optuna's TPE, NSGA-II and random search (plain: no drift gate and no
staged check; and with aqsvit's pruner), the hand-made baseline (one scheme and width for the whole
network) and a HAWQ-V3-style baseline (single-layer sensitivities from the all-8-bit model, an
integer program picks the least memory whose summed drops stay within delta, verified, then
repaired by the cheapest upgrades until feasible). Each over several seeds (the sampler's seed; the
data split and reference stay fixed). Writes benchmarks/results/compare.md, compare.html and
compare.png (best feasible weight compression against wall time).

    .venv/bin/python benchmarks/compare.py [--models spikformer_digits spikformer_wide] [--seeds 3]
    .venv/bin/python benchmarks/compare.py --quick     # a minute: checks the script, not a benchmark
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import plotly.graph_objects as go
import torch
from optuna.trial import TrialState
from scipy.optimize import Bounds, LinearConstraint, milp

import aqsvit  # noqa: F401
from aqsvit.data import load_dataset
from aqsvit.models import model_spec
from aqsvit.report import markdown_table
from aqsvit.report.figures import write_html, write_pngs
from aqsvit.search.baselines import one_width_baseline
from aqsvit.search.evaluator import Evaluator
from aqsvit.search.run import SearchSettings, prepare
from aqsvit.search.space import SearchSpace
from aqsvit.training import get_reference

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
        return next((t for t, x, d in sorted(self.evaluations) if d <= delta and x >= target), None)


def optuna_run(evaluator: Evaluator, key: str, method: str, sampler: str, seed: int, delta: float,
               pruned: bool, budget: float, width: int = 3, n_trials: int = 200) -> Run:
    settings = SearchSettings(sampler=sampler, beam_width=width, delta=delta, seed=seed,
                              pruner="drift" if pruned else "none", staged=pruned, study_name=method,
                              n_trials=n_trials, storage_url="sqlite:///:memory:")
    search = prepare(evaluator, settings, key, storage=optuna.storages.InMemoryStorage())
    stepwise = sampler in ("greedy", "beam")
    search.study.optimize(search.objective, n_trials=None if stepwise else n_trials, timeout=budget,
                          gc_after_trial=False)
    run = Run(method, seed)
    t0 = min(t.datetime_start for t in search.study.trials).timestamp()
    for t in search.study.trials:
        if t.system_attrs.get("aqsvit:idle") or t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        run.trials += 1
        run.pruned += t.state == TrialState.PRUNED
        if t.state != TrialState.COMPLETE:
            continue
        drop = t.user_attrs["drop"]
        if t.user_attrs.get("screened"):
            # the search accepted it on the screen at this time; whether that was right is what the
            # whole split says (measured here, outside the timed run)
            drop = evaluator.measure(search.space.assignment(search.space.choices_from_params(t.params))).drop
        else:
            run.full += 1
        run.evaluations.append((t.datetime_complete.timestamp() - t0, t.user_attrs["weight_compression"], drop))
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


def hawq_run(evaluator: Evaluator, space: SearchSpace, delta: float) -> tuple[Run, Run]:
    """HAWQ-V3-style: sensitivities, integer program, verify; and the cheapest repair to feasibility."""
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
    keys = list(drops)
    c = np.array([costs[k] for k in keys], dtype=float)
    one_each = np.array([[1.0 if k[0] == u.name else 0.0 for k in keys] for u in space.units])
    budget = np.array([[drops[k] for k in keys]])
    res = milp(c, integrality=np.ones(len(keys)), bounds=Bounds(0, 1),
               constraints=[LinearConstraint(one_each, 1, 1), LinearConstraint(budget, 0, max(0.0, delta - base_drop))])
    pick = {keys[i][0]: keys[i][1] for i in np.flatnonzero(res.x > 0.5)}
    m = evaluator.measure(space.assignment(pick))
    evals += 1
    picked = Run(f"HAWQ-V3-style (as picked: {m.weight_compression:.2f}x, drop {m.drop:.2f})", 0,
                 [(time.perf_counter() - started, m.weight_compression, m.drop)], evals, evals, 0,
                 time.perf_counter() - started)
    # repair: upgrade the unit whose current choice has the largest measured drop per saved bit,
    # one candidate up at a time, until the whole assignment is within delta
    while m.drop > delta:
        upgradable = [u for u in space.units if options.index(pick[u.name]) > 0]
        if not upgradable:
            break
        unit = max(upgradable, key=lambda u: drops[u.name, pick[u.name]])
        order = sorted(options, key=lambda ch: costs[unit.name, ch])
        pick[unit.name] = order[order.index(pick[unit.name]) + 1]
        m = evaluator.measure(space.assignment(pick))
        evals += 1
    repaired = Run("HAWQ-V3-style (repaired)", 0, [(time.perf_counter() - started, m.weight_compression, m.drop)],
                   evals, evals, 0, time.perf_counter() - started)
    return picked, repaired


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


def compare_model(model: str, seeds: int, budget: float, deltas: tuple[float, ...], quick: bool) -> tuple[str, go.Figure]:
    torch.set_num_threads(2)
    spec = model_spec(model)
    data = load_dataset("digits", spec.input_shape, seed=0)
    ckpt = get_reference(spec, data, progress=False, seed=0)
    evaluator = Evaluator(ckpt.build(), data, ckpt.fp_accuracy)
    key = f"{ckpt.sha256[:16]}-{data.fingerprint}"
    space = SearchSpace.from_layers(evaluator.layers, ("uniform", "pot"), (8, 6, 5, 4, 3, 2))
    n_trials = 20 if quick else 200
    runs: dict[float, list[Run]] = {d: [] for d in deltas}
    methods = [("greedy", "greedy", True, 3), ("beam B=2", "beam", True, 2), ("beam B=3", "beam", True, 3)]
    plain = [("TPE", "tpe"), ("NSGA-II", "nsga2"), ("random", "random")]
    if quick:
        methods, plain = methods[:1], plain[:1]
    for seed in range(seeds):
        for delta in deltas:
            for name, sampler, pruned, width in methods:
                runs[delta].append(optuna_run(evaluator, key, name, sampler, seed, delta, pruned, budget, width))
        for name, sampler in plain:  # Optuna's samplers run once at the first delta; the others are read from it
            for pruned in (False, True):
                label = f"{name}{' + drift pruner' if pruned else ''}"
                run = optuna_run(evaluator, key, label, sampler, seed, deltas[0], pruned, budget, n_trials=n_trials)
                for delta in deltas:
                    if delta == deltas[0] or not pruned:
                        runs[delta].append(run)
        print(f"{model}: seed {seed} done", flush=True)
    hand = hand_run(evaluator, ("uniform", "pot"), (8, 6, 5, 4, 3, 2))
    for delta in deltas:
        runs[delta].append(hand)
        if not quick:
            runs[delta].extend(hawq_run(evaluator, space, delta))
    text = [f"## {model} ({len(evaluator.layers)} quantizable layers, FP {evaluator.fp_accuracy:.2f}%)", ""]
    for delta in deltas:
        text += [f"Delta = {delta} points:", "", markdown_table(HEADERS, summarize(runs[delta], delta)), ""]
    fig = go.Figure()
    for method in dict.fromkeys(r.method for r in runs[deltas[0]]):
        r = next(r for r in runs[deltas[0]] if r.method == method)  # seed 0
        best, xs, ts = 0.0, [], []
        for t, x, d in sorted(r.evaluations):
            if d <= deltas[0] and x > best:
                best = x
                xs.append(x)
                ts.append(t)
        if ts:
            fig.add_trace(go.Scatter(x=ts, y=xs, mode="lines+markers", name=method, line_shape="hv"))
    fig.update_layout(title=f"{model}: best feasible weight compression (delta {deltas[0]}) against wall time, seed 0",
                      xaxis_title="wall time s", yaxis_title="weight compression x")
    return "\n".join(text), fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["spikformer_digits", "spikformer_wide"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=90.0, help="wall-time budget per method and seed, seconds")
    parser.add_argument("--deltas", type=float, nargs="+", default=[1.0, 1.5])
    parser.add_argument("--quick", action="store_true", help="one seed, few trials: checks the script works")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--name", default=None, help="file stem of the outputs (default compare)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.quick:
        args.models, args.seeds, args.budget = ["spikformer_digits"], 1, 30.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sections, figures = [], {}
    for model in args.models:
        text, fig = compare_model(model, args.seeds, args.budget, tuple(args.deltas), args.quick)
        sections.append(text)
        figures[f"compare_{model}"] = fig
        print(text, flush=True)
    intro = (f"Command: `.venv/bin/python benchmarks/compare.py --models {' '.join(args.models)} --seeds {args.seeds} "
             f"--budget {args.budget:.0f} --deltas {' '.join(map(str, args.deltas))}` on this 2-core machine. Every method gets the same space (uniform/pot x "
             f"8,6,5,4,3,2 bits per layer), the same reference and data, and a {args.budget:.0f} s wall budget per "
             "seed (Optuna's samplers stop at 200 trials or the budget). Mean ± standard deviation over seeds. "
             "'feasible': seeds with a feasible result. Greedy and beam run at each delta; TPE, NSGA-II and random "
             "run at delta 1 and their delta 1.5 row is read from the same trials (plain variants only: the pruner "
             "stops what is over delta 1). 's to result': wall time until the method's best feasible assignment "
             "was evaluated; HAWQ counts its sensitivity pass.")
    name = args.name or "compare"
    (out / f"{name}.md").write_text("\n\n".join(["# Compare: greedy and beam against the alternatives", intro, *sections]) + "\n")
    write_html(out / f"{name}.html", "aqsvit compare", list(figures.values()))
    write_pngs(out, figures)
    print(f"wrote {out}/{name}.md, {name}.html, PNGs")


if __name__ == "__main__":
    main()
