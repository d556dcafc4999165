"""No command loses, orphans or invents a study (issue 38): the reference a study was made on is never
replaced, reading commands never create, and Ctrl-C is one line with every finished trial kept."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from aqsvit.models import model_spec
from aqsvit.training import reference_path

CACHE = os.environ.get("AQSVIT_TEST_CHECKPOINTS", "studies/checkpoints")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aqsvit.cli", *args], capture_output=True, text=True, timeout=600)


def one_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def rows(url: str, name: str) -> list:
    study = optuna.load_study(study_name=name, storage=url)
    return [study.user_attrs] + [(t.number, t.state, t.params, t.values, t.user_attrs, t.system_attrs)
                                 for t in study.trials]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_another_model_or_training_never_replaces_a_studys_reference(finished_search, digits_data, tmp_path):
    """Other model arguments or training settings on an existing study are refused before any
    training: the reference file keeps its hash, no checkpoint is written, the study stays
    resumable."""
    cache = Path(CACHE)
    reference = reference_path(cache, model_spec("spikformer_digits"), digits_data)
    before_hash, before_files = digest(reference), sorted(p.name for p in cache.iterdir())
    url, name = finished_search["url"], finished_search["name"]
    before = rows(url, name)
    common = (f"storage.url={url}", f"search.study_name={name}", "progress=false", f"checkpoint_dir={cache}",
              f"hydra.run.dir={tmp_path}/run")
    assert "was created with model" in one_line(cli("search", *common, "model.kwargs.depths=1"))
    assert "would not resume it" in one_line(cli("search", *common, "train.epochs=2"))
    assert "model.kwargs.depths: got 0" in one_line(cli("search", *common, "model.kwargs.depths=0"))
    assert digest(reference) == before_hash and sorted(p.name for p in cache.iterdir()) == before_files
    assert rows(url, name) == before
    resumed = cli("search", *common)
    assert resumed.returncode == 0 and "| unit" in resumed.stdout, resumed.stderr
    assert rows(url, name) == before


def test_report_compare_names_the_studies_that_exist(finished_search, tmp_path):
    url, name = finished_search["url"], finished_search["name"]
    before = rows(url, name)
    line = one_line(cli("report", f"storage.url={url}", f"search.study_name={name}", "progress=false",
                        f"checkpoint_dir={CACHE}", "report.compare=[missing]", f"report.dir={tmp_path}/r",
                        f"hydra.run.dir={tmp_path}/run"))
    assert line == f"aqsvit: error: report.compare: got 'missing'; allowed: {name}"
    assert rows(url, name) == before and not (tmp_path / "r").exists()


def test_ctrl_c_is_one_line_and_keeps_finished_trials(reference, tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    proc = subprocess.Popen([sys.executable, "-m", "aqsvit.cli", "search", f"storage.url={url}", "progress=false",
                             f"checkpoint_dir={CACHE}", "search.study_name=interrupted", f"hydra.run.dir={tmp_path}/run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    finished = []
    while time.monotonic() < deadline and len(finished) < 3 and proc.poll() is None:
        time.sleep(0.5)
        try:
            finished = optuna.load_study(study_name="interrupted", storage=url).get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        except KeyError:
            continue
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert len(lines) == 1 and lines[0].startswith("aqsvit: interrupted") and "Traceback" not in err, err
    study = optuna.load_study(study_name="interrupted", storage=url)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) >= len(finished)
