"""What each gate saves along the real greedy and beam trajectories (issue #3, part 2).

For every gate configuration, the real search runs on the default digits model (in-memory study),
walking from the precise start (every layer at 8 bits; the sensitivity start's probes are stopped
by design, which is not what a gate does):
images passed through the model (calibration forwards, test images and the screen's probe order
included) against evaluating every candidate of the *unpruned* search fully, the candidates the
gate rejected although the whole split finds them feasible (wrongly stopped), and the final
assignment's effective bits and drop against the unpruned search's. Writes
benchmarks/results/gates.md.

    .venv/bin/python benchmarks/gates.py
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table
from aqsvit.search.evaluator import Evaluator
from aqsvit.search.run import run, summarize
from aqsvit.search.setup import assemble, reference
from aqsvit.search.trials import is_feasible
from aqsvit.search.vocabulary import OUTRANKED, PRUNED_BY_ATTR, SCREENED_ATTR, VERIFY_ATTR
from aqsvit.settings import ModelSettings, SearchSettings, Settings

RESULTS = Path(__file__).parent / "results"
GATES = {  # name -> SearchSettings fields
    "none (every candidate on the whole split)": dict(pruner="none", staged=False, screen=1.0),
    "staged stop only": dict(pruner="none", staged=True, screen=1.0),
    "drift pruner + staged stop": dict(pruner="drift", staged=True, screen=1.0),
    "drift pruner + staged stop + 30% screen (default)": dict(pruner="drift", staged=True, screen=0.3),
}


def search(evaluator: Evaluator, key: str, sampler: str, gate: dict) -> tuple:
    """Run one search; its summary, setup images, rejected keys, whole-split feasible keys, seconds."""
    settings = SearchSettings(sampler=sampler, start="precise", study_name=sampler, storage_url="sqlite:///:memory:",
                              **gate)
    started = time.perf_counter()
    s = assemble(evaluator, settings, key, storage=optuna.storages.InMemoryStorage())
    run(s, progress=False)
    summary = summarize(s)
    trials = [t for t in s.study.trials if t.params and not t.system_attrs.get(VERIFY_ATTR)]
    keys = {t.number: s.space.key(s.space.choices_from_params(t.params)) for t in trials}
    # a child pruned because its drift lost the beam's tie could not enter the beam: not a rejection
    rejected = {keys[t.number] for t in trials if t.state == TrialState.PRUNED
                and t.user_attrs.get(PRUNED_BY_ATTR) != OUTRANKED}
    feasible = {keys[t.number] for t in trials if is_feasible(t) and not t.user_attrs.get(SCREENED_ATTR)}
    return summary, s.setup_images, rejected, feasible, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    torch.set_num_threads(2)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = Settings(model=ModelSettings("spikformer_digits"), progress=False)
    ref = reference(settings, searchable=False)
    rows = []
    for sampler in ("greedy", "beam"):
        evaluator = ref.evaluator(settings, "cpu")
        key = f"gates-{ref.checkpoint.fp_accuracy:.3f}"
        base = None
        for name, gate in GATES.items():
            summary, setup, rejected, feasible, seconds = search(evaluator, key, sampler, gate)
            if base is None:  # the unpruned search: every candidate's whole-split outcome is known
                base = (summary, feasible)
            m, full_cost, images = summary.measurement, base[0].trials * len(evaluator.test), summary.images + setup
            rows.append((sampler if sampler == "greedy" else "beam B=3", name, summary.trials, summary.pruned,
                         summary.screened, summary.full_evaluations, images, f"{100 * (1 - images / full_cost):.0f}%",
                         len(rejected & base[1]), f"{m.effective_bits:.2f}",
                         f"{m.effective_bits - base[0].measurement.effective_bits:+.2f}", f"{m.drop:.2f}",
                         f"{seconds:.0f}"))
            print(rows[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = ["# Gates along the greedy and beam trajectories", "",
            "Command: `.venv/bin/python benchmarks/gates.py`. spikformer_digits on digits "
            f"(FP {ref.checkpoint.fp_accuracy:.2f}%, {len(evaluator.test)} test images), delta 1 point, calibration 64 images, the walk "
            "from the precise start (search.start=precise). "
            "*images*: calibration forwards + test images + the images that order the screen; *cut*: against "
            "evaluating every candidate of the unpruned search on the whole split; *wrongly stopped*: candidates "
            "the gate rejected that the unpruned search found feasible on the whole split (beam children pruned as "
            "`outranked`, whose drift lost a memory tie at the beam's bound, could not enter the beam and are not "
            "counted).", "",
            markdown_table(("search", "gate", "trials", "stopped", "accepted on screen", "whole split", "images",
                            "cut", "wrongly stopped", "eff. bits", "vs unpruned", "drop", "s"), rows), ""]
    (RESULTS / "gates.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
