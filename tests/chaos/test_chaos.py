"""Chaos: 4 workers on one study, 20 random SIGKILLs (each worker restarted), one PostgreSQL
restart; the study must finish with the same assignment as a clean single-worker run, no
assignment finished twice, and every killed trial FAIL with its candidate evaluated again."""
from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from aqsvit.search._stepwise import Outcome
from test_workers import PG_URL, need_pg

KILLS = 20
WORKERS = 4
BASE = ["progress=false", "grace_period=4", "workers=4"]


def spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aqsvit.cli", "search", *BASE, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def final_table(stdout: str) -> str | None:
    match = re.search(r"(\| unit .*?)\n\n", stdout, re.S)
    return match.group(1) if match else None


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", version, "main", "restart"], check=True, timeout=120)


def chaos(args: list[str], seed: int, restart_db: bool) -> tuple[list[str], int]:
    """Run WORKERS workers until all exit cleanly, killing and restarting them KILLS times."""
    rng = random.Random(seed)
    procs = [spawn(args) for _ in range(WORKERS)]
    outputs, kills, crashes, restarted = [], 0, 0, not restart_db
    deadline = time.time() + 900
    while time.time() < deadline:
        time.sleep(rng.uniform(0.3, 2.0))
        for i, p in enumerate(procs):  # a worker that died of a database hiccup comes back too
            if p.poll() is not None:
                out = p.stdout.read()
                if p.returncode == 0:
                    outputs.append(out)
                    procs[i] = None
                else:
                    crashes += 1
                    procs[i] = spawn(args)
        procs = [p for p in procs if p is not None]
        if not procs:
            break
        if kills < KILLS:
            victim = rng.randrange(len(procs))
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            procs[victim] = spawn(args)
            kills += 1
        if not restarted and kills >= KILLS // 2:
            restart_postgres()
            restarted = True
    assert not procs, "workers still running at the deadline"
    assert kills == KILLS and restarted
    return outputs, crashes


@pytest.fixture(scope="module")
def clean_results(reference, tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("clean")
    selected = {item.callspec.params["sampler"] for item in request.session.items
                if "test_chaos" in item.name and hasattr(item, "callspec")}
    samplers = sorted(selected or {"greedy", "beam"})
    tables = {}
    for sampler in samplers:
        # one process, but workers=4 so that it runs with the chaos workers' torch threads per process:
        # accuracy at the constraint's margin can differ by one image between thread counts
        out = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", "progress=false", f"sampler={sampler}",
                              "workers=4", f"storage.url=journal:///{folder}/{sampler}.log", "search.study_name=clean"],
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr
        tables[sampler] = final_table(out.stdout)
    return tables


def sampler_of(reference, name: str):
    """The search's sampler over the default space, to replay its walk from the study's outcomes."""
    from aqsvit.quant import quantizable_layers
    from aqsvit.search import BeamSampler, GreedySampler, SearchSpace
    space = SearchSpace.from_layers(quantizable_layers(reference.build()), ("uniform", "pot"), (8, 6, 5, 4, 3, 2))
    return GreedySampler(space) if name == "greedy" else BeamSampler(space, width=3)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["greedy", pytest.param("beam", marks=pytest.mark.chaos)])
@pytest.mark.parametrize("backend", ["journal", "postgres"])
def test_chaos(backend, sampler, clean_results, reference, tmp_path):
    name = f"chaos-{sampler}-{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        need_pg()
        url, storage = PG_URL, PG_URL
    else:
        log = f"{tmp_path}/chaos.log"
        url = f"journal:///{log}"
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(log))
    outputs, crashes = chaos([f"sampler={sampler}", f"storage.url={url}", f"search.study_name={name}"],
                             seed=len(name) + (backend == "postgres"), restart_db=backend == "postgres")
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.trials
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)], "study not finished"
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and not t.system_attrs.get("aqsvit:idle")]
    keys = [t.system_attrs["aqsvit:key"] for t in done]
    assert len(keys) == len(set(keys)), "an assignment finished twice"
    failed = [t for t in trials if t.state == TrialState.FAIL]
    lost = {t.system_attrs["aqsvit:key"] for t in failed if t.system_attrs.get("aqsvit:key")} - set(keys)
    # a killed trial's candidate is evaluated again unless the walk no longer needs it (a speculative
    # candidate of a step that others decided meanwhile): then no outcome of it changes the result
    walker = sampler_of(reference, sampler)
    outcomes, _, _ = walker._outcomes(trials)
    final = walker._final_plan(outcomes).result
    for key in lost:
        for feasible in (True, False):
            assert walker._final_plan({**outcomes, key: Outcome(feasible, float("inf"))}).result == final, \
                "a killed trial's candidate was needed but never evaluated again"
    assert outputs and all(final_table(o) == clean_results[sampler] for o in outputs)
    line = (f"chaos {backend}/{sampler}: kills survived {KILLS}, worker crashes restarted {crashes}, "
            f"trials {len(trials)}, FAIL {len(failed)} ({len(lost)} speculative, not needed again), "
            "duplicates 0, lost trials 0, final assignment identical")
    print(line)
    Path("test-artifacts").mkdir(exist_ok=True)
    with open("test-artifacts/chaos.txt", "a") as f:
        f.write(line + "\n")
