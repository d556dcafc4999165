"""The console script: one line and exit code 2 for bad input, tables for good input."""
from __future__ import annotations

import subprocess
import sys

import pytest

AQSVIT = [sys.executable, "-m", "aqsvit.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AQSVIT, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,field", [
    (("nonsense",), "command: got 'nonsense'"),
    (("baseline", "model.name=vit"), "model.name: got 'vit'"),
    (("baseline", "quant.bits=[9]"), "bits: got 9; allowed: integers 2..8"),
])
def test_bad_input_is_one_line_and_exit_2(args, field, reference):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(reference):
    result = run("baseline", "model.name=vit", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_baseline_prints_the_table(reference):
    result = run("baseline", "quant.bits=[8,2]", "quant.schemes=[uniform]")
    assert result.returncode == 0, result.stderr
    assert "| uniform | 8" in result.stdout and "| uniform | 2" in result.stdout


def study_rows(url: str) -> list:
    import optuna
    study = optuna.load_study(study_name="existing", storage=url)
    return [(t.number, t.state, t.params, t.values, t.user_attrs) for t in study.trials]


@pytest.mark.parametrize("bad,field", [
    (("quant.bits=[9]",), "quant.bits: got 9"),
    (("sampler=nonexistent",), "sampler: got 'nonexistent'; allowed: beam, greedy, nsga2, random, tpe"),
    (("quant.bits=[]",), "quant.bits: got []"),
    (("delta=-0.5",), "delta: got -0.5"),
    (("search.granularity=chunk",), "search.granularity: got 'chunk'; allowed: network, block, layer"),
    (("sampler=beam", "sampler.width=0"), "sampler.width: got 0; allowed: integers >= 1"),
    (("pruner.definition=vv",), "pruner.definition: got 'vv'"),
    (("workers=2",), "SQLite serves one worker"),
])
def test_bad_values_create_and_damage_no_study(bad, field, tmp_path, reference):
    import optuna
    fresh = tmp_path / "fresh.db"
    result = run("search", f"storage.url=sqlite:///{fresh}", "search.study_name=existing", *bad)
    assert result.returncode == 2 and field in result.stderr.strip().splitlines()[-1]
    assert len([l for l in result.stderr.splitlines() if l.strip()]) == 1
    assert not fresh.exists()
    url = f"sqlite:///{tmp_path}/existing.db"
    study = optuna.create_study(study_name="existing", storage=url, directions=["maximize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=3)
    before = study_rows(url)
    result = run("search", f"storage.url={url}", "search.study_name=existing", *bad)
    assert result.returncode == 2
    assert study_rows(url) == before
