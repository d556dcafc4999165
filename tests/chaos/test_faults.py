"""Deterministic fault injection: workers SIGKILLed at chosen points, restarted as an operator would.

Each case starts two workers on one study, each armed with a fault point (``fault_shim.py``): it
kills itself the N-th time it passes that point. A killed worker is restarted unarmed. For both
samplers on the journal file and PostgreSQL, every case must end with every worker exiting 0
without a traceback, the unfaulted run's assignment, no trial left running, no assignment
evaluated twice, and no needed candidate lost (``check_finished``); and each killed trial must end
as its fault point implies (failed and its candidate evaluated again, or kept as it finished).

``AQSVIT_FAULT_REPEAT=<k>`` runs every case k times (the 10-in-a-row record in
``benchmarks/results/faults.md``); one run of all cases takes a few minutes on 2 cores.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from aqsvit.models import model_spec
from aqsvit.proxy.reference import FORMAT as REFERENCE_FORMAT
from aqsvit.training import reference_path
from worker_tools import check_finished, final_table, load_study, run_to_end, search_process, study_url, walker_of

CACHE = os.environ.get("AQSVIT_TEST_CHECKPOINTS", "studies/checkpoints")
REPEAT = int(os.environ.get("AQSVIT_FAULT_REPEAT", "1"))
SHIM = ("-u", str(Path(__file__).with_name("fault_shim.py")))
WORKERS = 2
# a small search (one unit per block, 3 choices below 8 bits) with the screen and its verifications
SPACE = {"quant.schemes": ["uniform"], "quant.bits": [8, 4, 3, 2], "search.granularity": "block"}
SETTINGS = [f"{k}=[{','.join(map(str, v))}]" if isinstance(v, list) else f"{k}={v}" for k, v in SPACE.items()] \
    + [f"workers={WORKERS}", "grace_period=4"]
SAMPLERS = {"greedy": ["sampler=greedy"], "beam": ["sampler=beam", "sampler.width=3"]}
# each case arms the two workers with one point each; N counts that worker's passes. param:2: the
# second trial's claimed parameters are written (one batch, the one Optuna asked for included).
CASES = {
    "ask+param": ("ask:2", "param:2"),
    "state": ("before_state:2", "after_state:2"),
    "reference": ("reference_partial:1", "reference_rename:1"),
}


@pytest.fixture(scope="module")
def checkpoints(reference, digits_data, tmp_path_factory):
    """A fresh checkpoint folder holding (a link to) the digits reference and no FP reference cache."""
    def make() -> Path:
        folder = tmp_path_factory.mktemp("checkpoints")
        source = reference_path(CACHE, model_spec("spikformer_digits"), digits_data).resolve()
        (folder / source.name).symlink_to(source)
        return folder
    return make


@pytest.fixture(scope="module")
def clean(checkpoints, tmp_path_factory):
    """The final table of one unfaulted worker per sampler (with the faulted workers' threads)."""
    folder, shared = tmp_path_factory.mktemp("clean"), checkpoints()
    return {sampler: run_to_end(*SETTINGS, *args, f"storage.url=journal:///{folder}/{sampler}.log",
                                "search.study_name=clean", f"checkpoint_dir={shared}")
            for sampler, args in SAMPLERS.items()}, shared


def unexpected(stderr: str) -> list[str]:
    """Tracebacks, errors and warnings in a worker's log, except those the grace logic calls for: a
    killed worker's trial failed, and, on a loaded machine, a live worker's trial failed alike
    because that worker looked dead for a moment (it drops the trial and goes on)."""
    marks = ("Traceback", "ERROR", "WARNING", "[W ", "[E ")  # ours and Hydra's, then Optuna's log format
    return [line for line in stderr.splitlines() if any(mark in line for mark in marks)
            and "had no heartbeat" not in line and "took it for dead" not in line]


def faulted_run(args: list[str], faults: tuple[str, ...], folder: Path) -> tuple[list[str], list[dict]]:
    """Start one worker per fault, restart each killed one unarmed (once); return the finished
    workers' outputs and what each fault hit (its fault log)."""
    logs = [folder / f"fault-{i}.json" for i in range(len(faults))]
    procs = {i: search_process(*args, launcher=SHIM, env={**os.environ, "AQSVIT_FAULT": fault,
                                                          "AQSVIT_FAULT_LOG": str(logs[i])})
             for i, fault in enumerate(faults)}
    outputs, restarted, deadline = [], set(), time.time() + 600
    try:
        while procs and time.time() < deadline:
            time.sleep(0.2)
            for i, proc in list(procs.items()):
                if proc.poll() is None:
                    continue
                out, err = proc.communicate()
                assert not unexpected(err), f"worker {i} ({faults[i]}) logged:\n{err[-3000:]}"
                if proc.returncode == -9 and logs[i].exists() and i not in restarted:
                    procs[i] = search_process(*args)  # the operator restarts it, unarmed
                    restarted.add(i)
                    continue
                del procs[i]
                assert proc.returncode == 0, f"worker {i} ({faults[i]}) exit {proc.returncode}:\n{err[-3000:]}"
                outputs.append(out)
    finally:
        for proc in procs.values():  # a failed check leaves no worker behind
            proc.kill()
            proc.communicate()
    assert not procs, "workers still running at the deadline"
    for i, fault in enumerate(faults):
        assert i in restarted, f"worker {i} never reached its fault point {fault}"
    return outputs, [json.loads(log.read_text()) for log in logs]


def check_hit(study, hit: dict, per_trial: int) -> None:
    """The killed trial was hit where its point says, and ends as that point implies."""
    point, trials = hit["point"], {t._trial_id: t for t in study.trials}
    if point.startswith("reference"):
        return
    trial = trials[hit["trial_id"]]
    if point == "ask":
        assert not trial.params, "killed after ask, yet parameters were written"
    if point == "param":  # the whole claimed assignment in one write, before anything is measured
        assert len(trial.params) == per_trial and not trial.values, f"not killed after the batch: {trial.params}"
    if point == "after_state":  # its outcome was written: it stands, and nobody evaluates it again
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED), (point, trial.state)
    else:  # killed before its outcome: failed by the grace logic, its candidate free again
        assert trial.state == TrialState.FAIL, (point, trial.state)


def check_reference_cache(folder: Path) -> None:
    """The FP reference cache is whole (a partial write never takes the cache's name), and no
    killed writer's temp file is left behind (the next writer reuses and renames it)."""
    caches = list(folder.glob("fp-reference-*"))
    assert len(caches) == 1 and caches[0].suffix == ".pt", caches
    assert torch.load(caches[0], map_location="cpu", weights_only=True)["format"] == REFERENCE_FORMAT


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("backend", ["journal", "postgres"])
@pytest.mark.parametrize("repeat", range(REPEAT))  # outermost: a cut-short record holds whole runs
def test_faults(backend, sampler, case, repeat, clean, checkpoints, reference, tmp_path):
    tables, shared = clean
    name = f"fault-{sampler}-{case}-{uuid.uuid4().hex[:8]}"
    url = study_url(backend, tmp_path)
    folder = checkpoints() if case == "reference" else shared
    args = [*SETTINGS, *SAMPLERS[sampler], f"storage.url={url}", f"search.study_name={name}",
            f"checkpoint_dir={folder}"]
    walker = walker_of(reference, sampler, SPACE["quant.schemes"], SPACE["quant.bits"], SPACE["search.granularity"])
    per_trial = len(walker.space.distributions())
    faults = CASES[case]
    outputs, hits = faulted_run(args, faults, tmp_path)
    assert len(outputs) == WORKERS and all(final_table(out) == tables[sampler] for out in outputs), \
        "a worker ended with another assignment than the unfaulted run"
    study = load_study(name, url)
    failed, lost = check_finished(study, walker)
    for hit in hits:
        check_hit(study, hit, per_trial)
    if case == "reference":
        check_reference_cache(folder)
    line = (f"faults run {repeat + 1} {backend}/{sampler}/{case} ({', '.join(faults)}): workers exit 0, trials "
            f"{len(study.trials)}, FAIL {failed} ({lost} not needed again), duplicates 0, final assignment identical")
    print(line)
    Path("test-artifacts").mkdir(exist_ok=True)
    with open("test-artifacts/faults.txt", "a") as f:
        f.write(line + "\n")
