"""What a default greedy search costs, in full evaluations: before and with the stage cache and
the automatic start.

For each model, greedy with defaults otherwise (conf/config.yaml, SQLite): (1) the search before
this work, the precise start with ``search.cache_gb=0`` (every candidate runs the whole forward);
(2) the same walk with the default cache; (3) when ``search.start=auto`` chooses another start for
the model, today's default: that start without and with the cache (the same walk again). Cost = multiply-accumulates the trials and
the setup ran / those of one FP forward over the whole evaluation split (counted, not timed, so it
does not depend on the machine). (1) and (2) must walk the same trials and choose the same
assignment: the cached logits equal the full forward's bit for bit. Writes
benchmarks/results/cost.md.

    .venv/bin/python benchmarks/cost.py [--models spikformer_digits spikformer_wide]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna
import torch

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table
from aqsvit.search.stepwise import walk_start
from aqsvit.search.run import run, summarize
from aqsvit.search.setup import assemble, reference
from aqsvit.settings import EvalSettings, ModelSettings, SearchSettings, Settings

RESULTS = Path(__file__).parent / "results"
DEFAULT_CACHE_GB = EvalSettings().cache_gb


def walk(study: optuna.Study) -> list[tuple]:
    """Every trial's parameters, state and values, in order: what must not change."""
    return [(t.params, t.state, t.values) for t in study.get_trials(deepcopy=False)]


def search(model: str, start: str, cache_gb: float, tmp: str) -> tuple[tuple, list[tuple]]:
    settings = Settings(SearchSettings(start=start, storage_url=f"sqlite:///{tmp}/cost.db",
                                       study_name=f"{model}-{start}-{cache_gb:g}"),
                        EvalSettings(cache_gb=cache_gb), model=ModelSettings(model), progress=False)
    ref = reference(settings, searchable=False)
    evaluator, key = ref.evaluator(settings, "cpu"), ref.key
    started = time.perf_counter()
    prepared = assemble(evaluator, settings.search, key)
    run(prepared, progress=False)
    summary = summarize(prepared)
    wall = time.perf_counter() - started
    m = summary.measurement
    row = (model, f"{key[:8]}", walk_start(start).resolve(prepared.space).name + (" (auto)" if start == "auto" else ""),
           f"{cache_gb:g}", summary.trials, summary.full_evaluations, f"{m.weight_compression:.2f}", f"{m.drop:.2f}",
           f"{summary.cost:.1f}", f"{wall:.1f}")
    return row, walk(prepared.study)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["spikformer_digits", "spikformer_wide"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            before, walk_before = search(model, "precise", 0.0, tmp)
            cached, walk_cached = search(model, "precise", DEFAULT_CACHE_GB, tmp)
            rows += [before, cached]
            notes.append(f"- {model}: the precise walk with the cache costs {cached[8]} / {before[8]} = "
                         f"{float(cached[8]) / float(before[8]):.2f} of the search before; same trials, states and "
                         f"values: {'yes' if walk_before == walk_cached else 'NO'}")
            auto, walk_auto = search(model, "auto", DEFAULT_CACHE_GB, tmp)
            if auto[2].startswith("precise"):
                continue
            auto_before, walk_auto_before = search(model, "auto", 0.0, tmp)
            rows += [auto_before, auto]
            chosen = auto[2].split()[0]
            notes.append(f"- {model}: today's default (search.start=auto chose {chosen}) costs {auto[8]} full "
                         f"evaluations, {float(auto[8]) / float(before[8]):.2f} of the search before, at {auto[6]}x "
                         f"against {before[6]}x; without the cache the same walk costs {auto_before[8]} (the cache "
                         f"saves {1 - float(auto[8]) / float(auto_before[8]):.0%}); same trials, states and values: "
                         f"{'yes' if walk_auto_before == walk_auto else 'NO'}")
    command = "benchmarks/cost.py --models " + " ".join(args.models) + (f" --threads {args.threads}" if args.threads else "")
    text = "\n".join([
        "# Cost of a default greedy search: before and with the stage cache and the automatic start", "",
        "Greedy with default settings otherwise (conf/config.yaml), digits data, the reference the benchmarks "
        "train (first 8 hex digits of its checkpoint hash). Cost in full evaluations: multiply-accumulates of "
        "every trial and of the setup (the screen's probe order) / those of one FP forward over the whole "
        "evaluation split. The precise start with cache GB 0 is the default search before the stage cache and "
        "search.start=auto (every candidate runs the whole forward); (auto) rows are today's default, the start "
        "search.start=auto chooses, without and with the cache. Wall time is informative only (counted MACs do not depend on the machine; wall time does).", "",
        f"Command: `.venv/bin/python {command}`", "",
        markdown_table(("model", "reference", "start", "cache GB", "trials", "whole-split evaluations", "weight compression x",
                        "drop", "cost (full evaluations)", "wall s"), rows), "", *notes, ""])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cost.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
