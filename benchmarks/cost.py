"""What a default greedy search costs, in full evaluations, with and without the stage cache.

For each model: the default search (greedy, ``search.start`` and everything else as in
conf/config.yaml, SQLite) once with ``search.cache_gb=0`` (every candidate runs the whole forward,
as before the cache) and once with the default cache. Cost = multiply-accumulates its trials and
its setup ran / those of one FP forward over the whole evaluation split (counted, not timed, so
the figure does not depend on the machine). The two runs must walk the same trials and choose the
same assignment: the cached logits equal the full forward's bit for bit. Writes
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
from aqsvit.data import load_dataset
from aqsvit.data.prepared import EvalSettings
from aqsvit.models import model_spec
from aqsvit.report import markdown_table
from aqsvit.search.evaluator import Evaluator
from aqsvit.search.run import prepare, run, summarize
from aqsvit.search.settings import SearchSettings
from aqsvit.training import get_reference

RESULTS = Path(__file__).parent / "results"
DEFAULT_CACHE_GB = EvalSettings().cache_gb


def walk(study: optuna.Study) -> list[tuple]:
    """Every trial's parameters, state and values, in order: what must not change."""
    return [(t.params, t.state, t.values) for t in study.get_trials(deepcopy=False)]


def search(model: str, cache_gb: float, tmp: str) -> tuple[tuple, list[tuple]]:
    spec = model_spec(model)
    data = load_dataset("digits", spec.input_shape, seed=0)
    ckpt = get_reference(spec, data, progress=False, seed=0)
    evaluator = Evaluator(ckpt.build(), data, ckpt.fp_accuracy, settings=EvalSettings(cache_gb=cache_gb))
    key = f"{ckpt.sha256[:16]}-{data.fingerprint}"
    settings = SearchSettings(storage_url=f"sqlite:///{tmp}/cost.db", study_name=f"{model}-{cache_gb:g}")
    started = time.perf_counter()
    prepared = prepare(evaluator, settings, key)
    run(prepared, progress=False)
    summary = summarize(prepared)
    wall = time.perf_counter() - started
    m = summary.measurement
    row = (model, f"{key[:8]}", f"{cache_gb:g}", summary.trials, summary.full_evaluations,
           f"{m.weight_compression:.2f}", f"{m.drop:.2f}", f"{summary.cost:.1f}", f"{wall:.1f}")
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
            before, walk_before = search(model, 0.0, tmp)
            after, walk_after = search(model, DEFAULT_CACHE_GB, tmp)
            rows += [before, after]
            notes.append(f"- {model}: cost {after[7]} / {before[7]} = {float(after[7]) / float(before[7]):.2f} of "
                         f"the uncached search; same trials, states and values: "
                         f"{'yes' if walk_before == walk_after else 'NO'}")
    command = "benchmarks/cost.py --models " + " ".join(args.models) + (f" --threads {args.threads}" if args.threads else "")
    text = "\n".join([
        "# Cost of a default greedy search, with and without the stage cache", "",
        "Default settings (greedy, conf/config.yaml), digits data, the cached reference (first 8 hex digits of "
        "its checkpoint hash). Cost in full evaluations: multiply-accumulates of every trial and of the setup "
        "(the screen's probe order) / those of one FP forward over the whole evaluation split. cache GB 0 is "
        "the search before the stage cache (every candidate runs the whole forward). Wall time is informative only (counted MACs do not depend on the machine; wall time does).", "",
        f"Command: `.venv/bin/python {command}`", "",
        markdown_table(("model", "reference", "cache GB", "trials", "whole-split evaluations", "weight compression x",
                        "drop", "cost (full evaluations)", "wall s"), rows), "", *notes, ""])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cost.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
