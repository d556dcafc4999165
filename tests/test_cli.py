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
    (("search.start=middle",), "search.start: got 'middle'; allowed: precise, one_width"),
    (("sampler=beam", "sampler.width=0"), "sampler.width: got 0; allowed: integers >= 1"),
    (("pruner.definition=vv",), "pruner.definition: got 'vv'"),
    (("workers=2",), "SQLite serves one worker"),
    (("quant.bits=[0]",), "quant.bits: got 0; allowed: integers 2..8"),
    (("quant.schemes=[int]",), "quant.schemes: got 'int'; allowed: uniform, pot, fp32"),
    (("workers=0",), "workers: got 0; allowed: integers >= 1"),
    (("model=vit",), "model: got 'vit'; allowed: spikformer_digits, spikformer_dvs128, spikformer_dvs_digits, spikformer_wide"),
    (("nonsense_key=1",), "nonsense_key: not a config key"),
    (("device=tpu",), "device: got 'tpu'; allowed: auto, cpu"),
    (("checkpoint={tmp}/text.pt",), "text.pt: not a readable torch checkpoint"),
    (("checkpoint={tmp}/cut.pt",), "cut.pt: not a readable torch checkpoint"),
    (("checkpoint={tmp}/pickled.pt",), "pickled.pt: rejected by torch.load(weights_only=True): Unsupported global"),
    (("checkpoint={tmp}/other.pt",), "other.pt: holds spikformer_digits with depths=1; the config asks for depths=2"),
    (("checkpoint={tmp}/missing.pt",), "missing.pt: no such file"),
    (("dataset=npz", "dataset.kwargs.path={tmp}/shape.npz"), "images have shape (40, 2, 2, 2, 2); allowed"),
    (("dataset=npz", "dataset.kwargs.path={tmp}/empty.npz"), "no images"),
    (("dataset=npz", "dataset.kwargs.path={tmp}/none.npz"), "dataset.path: "),
    (("storage.url=postgresql://postgres@nohost.invalid:5432/test",), "storage.url: cannot open postgresql://"),
    (("storage.url=postgresql://postgres@127.0.0.1:1/test",), "storage.url: cannot open"),
    (("storage.url=postgresql://postgres@127.0.0.1:5432/no_such_db_aqsvit",), "no_such_db_aqsvit"),
    (("storage.url=sqlite:////proc/aqsvit-read-only/x.db",), "storage.url: cannot create folder /proc/aqsvit-read-only"),
    (("storage.url=mysql://root@127.0.0.1/test",), "storage.url: got 'mysql://root@127.0.0.1/test'; allowed"),
])
def test_bad_values_create_and_damage_no_study(bad, field, tmp_path, reference):
    import numpy as np
    import optuna
    import torch

    from aqsvit.models import create_model, save_checkpoint
    (tmp_path / "text.pt").write_text("not a checkpoint")
    good = save_checkpoint(tmp_path / "good.pt", create_model("spikformer_digits", depths=1), 90.0, "x").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")
    (tmp_path / "other.pt").write_bytes(good)  # a 1-block model where the 2-block default is expected
    np.savez(tmp_path / "shape.npz", images=np.zeros((40, 2, 2, 2, 2)), labels=np.zeros(40, int))
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 8, 8)), labels=np.zeros(0, int))
    bad = tuple(b.replace("{tmp}", str(tmp_path)) for b in bad)
    fresh = tmp_path / "fresh.db"
    result = run("search", f"storage.url=sqlite:///{fresh}", "search.study_name=existing", *bad)
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("aqsvit: error: ") and field in lines[0], result.stderr
    assert not fresh.exists()
    url = f"sqlite:///{tmp_path}/existing.db"
    study = optuna.create_study(study_name="existing", storage=url, directions=["maximize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=3)
    before = study_rows(url)
    if not any(b.startswith("storage.url=") for b in bad):
        result = run("search", f"storage.url={url}", "search.study_name=existing", *bad)
        assert result.returncode == 2
    assert study_rows(url) == before
