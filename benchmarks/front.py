"""The whole accuracy-memory front from one search (issue 35), against what else answers several deltas.

Per model and seed (the samplers' seed; the reference and the data stay fixed), every method gets
the same model, data and space, and its trials are measured by the search's own objective:

- **front search**: one greedy study with ``search.front`` = the deltas below (the default start,
  drift pruner and screen);
- **one search per delta**: today's default greedy search, once for each delta (their costs add up);
- **re-solve, no walk**: ModelOpt ``auto_quantize``-style: our probes measured once, the integer
  program re-solved for each delta (bisection of its budget, verified), no walk after it;
- Optuna's **NSGA-II**, **TPE** (multi-objective, constant liar) and **GPSampler**, maximizing
  accuracy and minimizing memory over the same space, with the staged check against the loosest
  delta (it only stops candidates beyond it, so their front within it is what they measured) and
  a wall-time budget of ``--peer-factor`` (3) times the front search's.

The front search and the re-solve also answer delta 0 (``--front-zero``, on by default): the
front a user picks from starts at no loss at all.

Metrics: the hypervolume of each method's feasible front: points measured on the whole evaluation
split with drop <= the loosest delta, in (memory / FP32 memory, drop clamped at 0) up to (1,
loosest delta). With the drop clamped it is the area under the pick curve, the least memory
within each delta integrated over delta in [0, loosest]: what a user choosing a delta >= 0
afterwards can get. (Unclamped, a point measured above the FP accuracy, which on a split of a
few hundred images is one or two images of noise, would count for more than any delta can ask.)
Also the weight compression of the smallest measured point within each delta, the wall time and
the cost in full evaluations (multiply-accumulates / one FP forward over the split).
Writes benchmarks/results/front.md.

    .venv/bin/python benchmarks/front.py [--models spikformer_digits sdt_digits16 spikformer_wide] [--seeds 0 1 2]
    .venv/bin/python benchmarks/front.py --models          # only rewrite front.md from front.json
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table
from aqsvit.search import GreedySampler
from aqsvit.search.front import measured
from aqsvit.search.run import Search, run, search_cost
from aqsvit.search.setup import assemble, reference
from aqsvit.search.stepwise import Plan
from aqsvit.search.stepwise.outcome import Outcome
from aqsvit.search.vocabulary import DELTA_ATTR, DROP_ATTR, IDLE_ATTR
from aqsvit.settings import ModelSettings, SearchSettings, Settings

RESULTS = Path(__file__).parent / "results"
DELTAS = (0.5, 1.0, 1.5, 2.0, 3.0)
PEERS = {"NSGA-II": "nsga2", "TPE": "tpe", "GPSampler": None}


class ResolveSampler(GreedySampler):
    """The start's integer program re-solved per delta, verified, and nothing walked after it."""

    def plan(self, outcomes: dict[str, Outcome]) -> Plan:
        start = self.start_assignment(outcomes)
        if isinstance(start, Plan):
            return start
        return Plan(result=start) if self.space.key(start) in outcomes else Plan(proposals=[start])


@dataclass
class MethodRun:
    """One method, one seed: its measured points and what it cost."""

    method: str
    seed: int
    points: list[tuple[float, float, float]] = field(default_factory=list)  # (memory bytes, drop, weight x)
    wall: float = 0.0
    cost: float = 0.0  # full evaluations
    trials: int = 0
    parts: dict[str, float] = field(default_factory=dict)  # cost by part: "shared" (probes, screen) or a delta

    def smallest(self, delta: float) -> tuple[float, float, float] | None:
        within = [p for p in self.points if p[1] <= delta + 1e-9]
        return min(within, default=None)

    def hypervolume(self, fp_memory: float, delta_max: float) -> float:
        """Area dominated by the feasible points in (memory / FP memory, drop), up to (1, delta_max)."""
        pts = sorted((m / fp_memory, max(d, 0.0)) for m, d, _ in self.points if d <= delta_max + 1e-9 and m < fp_memory)
        area, best_drop = 0.0, delta_max
        for i, (memory, drop) in enumerate(pts):
            best_drop = min(best_drop, drop)
            right = pts[i + 1][0] if i + 1 < len(pts) else 1.0
            area += (right - memory) * (delta_max - best_drop)
        return area


def points_of(trials: list[FrozenTrial]) -> list[tuple[float, float, float]]:
    return [(t.values[1], float(t.user_attrs[DROP_ATTR]), float(t.user_attrs["weight_compression"]))
            for t in measured(trials)]


def prepared(evaluator, key: str, seed: int, name: str, **settings) -> Search:
    search_settings = SearchSettings(seed=seed, study_name=name, storage_url="sqlite:///:memory:", **settings)
    return assemble(evaluator, search_settings, key, storage=optuna.storages.InMemoryStorage())


def walked(evaluator, key: str, seed: int, name: str, sampler=None, **settings) -> tuple[Search, float]:
    """A stepwise search run to its end (``sampler``: replaces the built one over the same space)."""
    started = time.perf_counter()
    search = prepared(evaluator, key, seed, name, **settings)
    if sampler is not None:
        search.study.sampler = sampler(search.space, seed=seed, start=search.settings.start,
                                       front=search.settings.front)
    run(search, progress=False)
    return search, time.perf_counter() - started


def record(method: str, seed: int, searches: list[Search], wall: float) -> MethodRun:
    """The runs of ``searches`` as one method's; ``parts``: a front's cost split into what its walks
    share (probes, the screen's setup) and each walk's own trials; several one-delta searches' cost
    by their delta."""
    out = MethodRun(method, seed, wall=wall)
    for search in searches:
        trials = [t for t in search.study.get_trials(deepcopy=False) if not t.system_attrs.get(IDLE_ATTR)]
        finished = [t for t in trials if t.state.is_finished()]
        cost = search_cost(search, finished)
        out.points += points_of(trials)
        out.cost += cost
        out.trials += len(trials)
        if search.settings.front:
            setup = search_cost(search, [])  # the process's own setup: no trial's
            walks = {f"{d:g}": [t for t in finished if t.system_attrs.get(DELTA_ATTR) == d]
                     for d in search.settings.front}
            for name, mine in walks.items():
                out.parts[name] = search_cost(search, mine) - setup
            out.parts["shared"] = cost - sum(out.parts.values())
        elif len(searches) > 1:
            out.parts[f"{search.settings.delta:g}"] = cost
    return out


def peer(evaluator, key: str, seed: int, method: str, budget: float, deltas: tuple[float, ...]) -> MethodRun:
    name = PEERS[method]
    started = time.perf_counter()
    search = prepared(evaluator, key, seed, method, sampler=name or "random", pruner="none", delta=deltas[-1],
                      n_trials=100000)
    if name is None:
        search.study.sampler = optuna.samplers.GPSampler(seed=seed)
    search.study.optimize(search.objective, timeout=max(0.0, budget - (time.perf_counter() - started)),
                          gc_after_trial=False)
    return record(method, seed, [search], time.perf_counter() - started)


def model_runs(model: str, seeds: list[int], deltas: tuple[float, ...], factor: float,
               zero: bool) -> tuple[dict, list[MethodRun]]:
    settings = Settings(SearchSettings(), model=ModelSettings(model), progress=False)
    ref = reference(settings)
    evaluator = ref.evaluator(settings, "cpu")
    fp = evaluator.measure({})
    info = {"model": model, "fp_accuracy": fp.accuracy, "fp_memory": fp.memory_bytes, "layers": len(evaluator.layers),
            "reference": ref.key, "code": code_version()}
    runs = []
    for seed in seeds:
        front_deltas = (0.0, *deltas) if zero and 0.0 not in deltas else deltas
        search, wall = walked(evaluator, ref.key, seed, "front", front=front_deltas)
        ours = record("front search", seed, [search], wall)
        runs.append(ours)
        singles = [walked(evaluator, ref.key, seed, f"delta {d}", delta=d) for d in deltas]
        runs.append(record("one search per delta", seed, [s for s, _ in singles], sum(w for _, w in singles)))
        one = next(s for s, _ in singles if s.settings.delta == 1.0) if 1.0 in deltas else singles[0][0]
        runs.append(record("one search, delta 1", seed, [one], next(w for s, w in singles if s is one)))
        resolve, wall = walked(evaluator, ref.key, seed, "resolve", sampler=ResolveSampler, front=front_deltas)
        runs.append(record("re-solve, no walk", seed, [resolve], wall))
        for method in PEERS:
            runs.append(peer(evaluator, ref.key, seed, method, factor * ours.wall, deltas))
        print(f"{model} seed {seed}: " + ", ".join(f"{r.method} {r.wall:.0f} s" for r in runs if r.seed == seed),
              flush=True)
    return info, runs


def code_version() -> str:
    """The commit the runs measure (``+changes`` when the work tree differs from it)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=RESULTS).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--", "aqsvit") else "")


def mean_sd(values: list[float]) -> str:
    if not values:  # e.g. a peer that found no point within a delta on any seed
        return "none"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def section(info: dict, runs: list[MethodRun], deltas: tuple[float, ...], seeds: list[int]) -> tuple[str, list[str]]:
    """The model's table and the verdicts of the issue's checks (one line each, failed ones too)."""
    fp_memory, delta_max = info["fp_memory"], deltas[-1]
    methods = list(dict.fromkeys(r.method for r in runs))
    rows = []
    for method in methods:
        mine = [r for r in runs if r.method == method]
        cells = [method, mean_sd([r.hypervolume(fp_memory, delta_max) for r in mine])]
        for d in deltas:
            best = [r.smallest(d) for r in mine]
            found = [b[2] for b in best if b]
            cells.append(mean_sd(found) + ("" if all(best) or not found else f" ({best.count(None)} none)"))
        cells += [mean_sd([r.wall for r in mine]), mean_sd([r.cost for r in mine]), mean_sd([float(r.trials) for r in mine])]
        rows.append(cells)
    headers = ["method", "hypervolume", *(f"weight x at Δ {d:g}" for d in deltas), "wall s", "full evals", "trials"]
    checks = []
    for seed in seeds:
        by = {r.method: r for r in runs if r.seed == seed}
        ours = by["front search"]
        hv = {m: r.hypervolume(fp_memory, delta_max) for m, r in by.items() if m != "one search, delta 1"}
        top = max(hv.values())
        checks.append(f"seed {seed}: hypervolume {hv['front search']:.4f} " +
                      ("is the largest" if hv["front search"] >= top - 1e-12 else
                       f"is NOT the largest ({max(hv, key=hv.get)} {top:.4f})"))
        beaten = [(m, d) for m, r in by.items() if m not in ("front search", "one search, delta 1") for d in deltas
                  if r.smallest(d) and (ours.smallest(d) is None or r.smallest(d)[0] < ours.smallest(d)[0])]
        checks.append(f"seed {seed}: at every Δ our point is at least as small as each peer's" if not beaten else
                      f"seed {seed}: smaller than ours: " + ", ".join(f"{m} at Δ {d:g}" for m, d in beaten))
        nsga = by["NSGA-II"].wall
        checks.append(f"seed {seed}: wall {ours.wall:.1f} s = {ours.wall / nsga:.2f} of NSGA-II's {nsga:.1f} s "
                      f"({'within' if ours.wall <= nsga / 3 else 'NOT within'} 1/3)")
        single = by["one search, delta 1"].cost
        checks.append(f"seed {seed}: cost {ours.cost:.1f} full evaluations = {ours.cost / single:.2f}x the single "
                      f"Δ = 1 search's {single:.1f} ({'within' if ours.cost <= 2 * single else 'NOT within'} 2x)")
    text = (f"## {info['model']} ({info['layers']} quantizable layers, FP {info['fp_accuracy']:.2f}%, "
            f"FP32 {fp_memory / 1024:.1f} KiB)\n\nReference `{info['reference']}`, code `{info.get('code', '?')}`. "
            "Mean ± sd over seeds "
            f"{', '.join(map(str, seeds))}.\n\n" + markdown_table(headers, rows) + "\n\n" +
            "\n".join(f"- {c}" for c in checks) + "\n" + cost_parts(runs, deltas))
    return text, checks


def cost_parts(runs: list[MethodRun], deltas: tuple[float, ...]) -> str:
    """Where the front's full evaluations go, beside each delta's own search: what the walks share
    (probes and the screen's setup, once) and each walk. Empty for runs recorded without parts."""
    fronts = [r for r in runs if r.method == "front search" and r.parts]
    singles = [r for r in runs if r.method == "one search per delta" and r.parts]
    if not fronts:
        return ""
    names = ["shared", *sorted((n for n in fronts[0].parts if n != "shared"), key=float)]
    rows = [[("probes and screen (shared)" if name == "shared" else f"walk Δ {name}"),
             mean_sd([r.parts[name] for r in fronts if name in r.parts]),
             mean_sd([r.parts[name] for r in singles if name in r.parts]) if name != "shared" else ""]
            for name in names]
    listed = [r.cost - sum(v for n, v in r.parts.items() if n != "shared" and float(n) not in deltas) for r in fronts]
    singles_one = [r.cost for r in runs if r.method == "one search, delta 1" and r.seed in {f.seed for f in fronts}]
    ratio = statistics.mean(listed) / statistics.mean(singles_one) if singles_one else float("nan")
    return ("\nCost by part, full evaluations (the front's walks beside each delta's own search, which "
            "measures its probes and screen again):\n\n" +
            markdown_table(["part", "front search", "one search for that Δ"], rows) +
            f"\n\nThe front over the listed deltas alone (without the walks of deltas not listed): "
            f"{statistics.mean(listed):.1f} full evaluations = {ratio:.2f}x the single Δ = 1 search.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["spikformer_digits"],
                        help="models to run (none: rewrite the tables from the stored points)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--deltas", nargs="+", type=float, default=list(DELTAS))
    parser.add_argument("--peer-factor", type=float, default=3.0, help="peers' wall budget / the front search's")
    parser.add_argument("--no-front-zero", dest="zero", action="store_false", help="no delta 0 in the front search")
    parser.add_argument("--out", default=str(RESULTS / "front.md"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    deltas = tuple(sorted(args.deltas))
    raw = Path(args.out).with_suffix(".json")
    stored = json.loads(raw.read_text()) if raw.exists() else {}
    sections = []
    for model in args.models:  # each seed's runs replace that seed's stored ones (seeds may run apart)
        info, runs = model_runs(model, args.seeds, deltas, args.peer_factor, args.zero)
        before = stored.get(model, {})
        kept = [r for r in before.get("runs", []) if r["seed"] not in args.seeds]
        if kept and before["info"]["reference"] != info["reference"]:  # one section, one reference
            print(f"{model}: seeds {sorted({r['seed'] for r in kept})} were measured on reference "
                  f"{before['info']['reference']}, not {info['reference']}: dropped", flush=True)
            kept = []
        stored[model] = {"info": info, "runs": kept + [asdict(r) for r in runs]}
        raw.write_text(json.dumps(stored, indent=1))
    for model, entry in stored.items():
        runs = [MethodRun(**{**r, "points": [tuple(p) for p in r["points"]]}) for r in entry["runs"]]
        seeds = sorted({r.seed for r in runs})
        sections.append(section(entry["info"], runs, deltas, seeds)[0])
    commands = "; ".join(
        "`" + shlex.join([".venv/bin/python", "benchmarks/front.py", "--models", model, "--seeds",
                          *(str(seed) for seed in sorted({r["seed"] for r in entry["runs"]}))]) + "`"
        for model, entry in stored.items())
    Path(args.out).write_text(
        "# The whole front from one search\n\n"
        f"Commands: {commands} (seeds may run apart: each run replaces its seeds' points in {raw.name}, and "
        "`--models` with no model rewrites the tables from it), on this 2-core machine. Every method measures its "
        "trials with the search's objective on the same model, data and space; 'weight x at Δ' is the "
        "smallest point it measured on the whole split within that Δ; hypervolume: of the points with drop <= "
        f"{deltas[-1]:g} in (memory / FP32 memory, drop) up to (1, {deltas[-1]:g}); NSGA-II, TPE and GPSampler "
        f"get {args.peer_factor:g}x the front search's wall time; 'one search, delta 1' is one of the per-delta "
        "searches, the cost the front is held to (at most 2x); 'cost by part' splits the front search's full "
        "evaluations into what its walks share (the probes, each screen's order) and each walk's own trials, "
        "beside the search for that delta alone.\n\n" + "\n".join(sections))
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
