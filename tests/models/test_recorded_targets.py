"""No code runs from a data file (issue 37): a checkpoint, packed model, assignment file or study that
records a ``model.target`` is rebuilt only when the user names that same target in this run.

Each hostile file records ``os:system`` with a command that would create a marker file; the tests
check that the marker never appears unless the user names ``os:system`` themselves."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import optuna
import pytest
import torch

from aqsvit.errors import AqsvitError
from aqsvit.models import create_model, load_checkpoint, save_checkpoint
from aqsvit.models.checkpoint import FORMAT
from aqsvit.models.target import target_spec
from aqsvit.report.export import (ASSIGNMENT_FORMAT, PACKED_MAGIC, assignment_json, load_packed, read_assignment,
                                  save_packed)
from aqsvit.search.vocabulary import FINGERPRINT_ATTR

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "os:system"
CNN = "tests.user_models.cnn:spiking_cnn"


def hostile_record(marker: Path) -> dict:
    return {"name": "system", "kwargs": {"command": f"touch {marker}"}, "target": HOSTILE, "input_shape": [1, 8, 8]}


def write_files(folder: Path, record: dict) -> dict[str, Path]:
    """A checkpoint, a packed model and an assignment file recording ``record`` as their model."""
    checkpoint = folder / "hostile.pt"
    torch.save({"format": FORMAT, "model_name": record["name"], "model_kwargs": record["kwargs"],
                "model_target": record["target"], "model_input_shape": record["input_shape"],
                "state_dict": {}, "fp_accuracy": 90.0, "data_fingerprint": "x"}, checkpoint)
    header = zlib.compress(json.dumps({"model": record, "layers": [], "rest": []}).encode())
    packed = folder / "hostile.aqsv"
    packed.write_bytes(PACKED_MAGIC + struct.pack("<I", len(header)) + header)
    assignment = folder / "assignment.json"
    assignment.write_text(json.dumps({"format": ASSIGNMENT_FORMAT, "model": record, "assignment": {}, "metrics": {}}))
    return {"checkpoint": checkpoint, "packed": packed, "assignment": assignment}


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "aqsvit.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def hostile(tmp_path) -> tuple[dict[str, Path], Path]:
    marker = tmp_path / "PWNED"
    return write_files(tmp_path, hostile_record(marker)), marker


def test_python_api_refuses_every_file_that_records_a_target(hostile):
    files, marker = hostile
    readers = {"checkpoint": lambda p: load_checkpoint(p).build(), "packed": lambda p: load_packed(p),
               "assignment": lambda p: read_assignment(p)}
    for kind, read in readers.items():
        with pytest.raises(AqsvitError, match=r"records model.target 'os:system'.*model.target=os:system") as err:
            read(files[kind])
        assert "\n" not in str(err.value)
    # a target the user names for another model does not open the door either
    with pytest.raises(AqsvitError, match="this run names 'tests.user_models.cnn:spiking_cnn'"):
        load_checkpoint(files["checkpoint"], target=CNN)
    assert not marker.exists()


def test_naming_the_target_behaves_as_before(hostile):
    """The user who names ``os:system`` gets what they named: it runs (and is then refused for not
    being a model), as any model.target the user gives does."""
    files, marker = hostile
    ckpt = load_checkpoint(files["checkpoint"], target=HOSTILE)
    with pytest.raises(AqsvitError, match="returned a int, not an nn.Module"):
        ckpt.build()
    assert marker.exists()


def test_recorded_arguments_must_be_parameters_of_the_named_builder(tmp_path):
    record = {"name": "spiking_cnn", "kwargs": {"width": 8, "extra": 1}, "target": CNN, "input_shape": [1, 8, 8]}
    files = write_files(tmp_path, record)
    with pytest.raises(AqsvitError, match="records argument 'extra', which is not a parameter of"):
        read_assignment(files["assignment"], target=CNN)
    record["kwargs"] = {"width": {"nested": "dict"}}
    files = write_files(tmp_path, record)
    with pytest.raises(AqsvitError, match="model argument 'width' is not plain data"):
        load_packed(files["packed"], target=CNN)


def test_a_user_models_files_load_when_the_user_names_it(tmp_path):
    """Today's behaviour for a real model.target: the checkpoint, packed model and assignment load
    and rebuild the same model once its target is named, and only then."""
    model = create_model(target_spec(CNN, {"width": 8})).eval()
    ckpt_path = save_checkpoint(tmp_path / "cnn.pt", model, 91.0, "fp")
    assignment = {"stages.0.conv": ("uniform", 4)}
    packed_path = save_packed(tmp_path / "cnn.aqsv", model, assignment)
    json_path = tmp_path / "assignment.json"
    json_path.write_text(assignment_json(model.spec, assignment, {"accuracy": 90.0}))
    for read in (lambda: load_checkpoint(ckpt_path), lambda: load_packed(packed_path),
                 lambda: read_assignment(json_path)):
        with pytest.raises(AqsvitError, match=f"records model.target '{CNN}'"):
            read()
    rebuilt = load_checkpoint(ckpt_path, target=CNN).build()
    assert rebuilt.spec == model.spec
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, rebuilt.state_dict()[name])
    packed, packed_assignment = load_packed(packed_path, target=CNN)
    assert packed.spec == model.spec and packed_assignment == assignment
    assert read_assignment(json_path, target=CNN) == (model.spec, assignment)


def test_cli_refuses_recorded_targets(hostile, tmp_path, reference):
    files, marker = hostile
    common = (f"checkpoint_dir={tmp_path}/ck", "progress=false", f"hydra.run.dir={tmp_path}/run")
    line = one_line(cli("search", *common, f"checkpoint={files['checkpoint']}", f"storage.url=sqlite:///{tmp_path}/a.db"))
    assert "records model.target 'os:system'" in line and "model.target=os:system" in line
    line = one_line(cli("finetune", *common, f"finetune.assignment={files['assignment']}"))
    assert "records model.target 'os:system'" in line
    assert not marker.exists() and not (tmp_path / "a.db").exists()


def test_study_that_records_a_target_is_refused(tmp_path, reference):
    """A study whose fingerprint records os:system: report and finetune (CLI) and a Python search
    on it refuse it in one line; nothing runs and the study keeps every attribute."""
    marker = tmp_path / "PWNED"
    url = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="hostile", storage=url, directions=["maximize", "minimize"])
    line = f"system [('command', 'touch {marker}')] target {HOSTILE} input [1, 8, 8]"
    study.set_user_attr(FINGERPRINT_ATTR, {"model": line, "reference (checkpoint, data)": "x"})
    before = optuna.load_study(study_name="hostile", storage=url).user_attrs
    common = (f"storage.url={url}", "search.study_name=hostile", "progress=false", f"hydra.run.dir={tmp_path}/run",
              f"report.dir={tmp_path}/reports")
    for command in ("report", "finetune", "search"):
        text = one_line(cli(command, *common))
        assert "was created with model" in text and "os:system" in text, text
    import aqsvit
    model = reference.build()
    from aqsvit.data import load_dataset
    data = load_dataset("digits", (1, 8, 8), seed=0)
    with pytest.raises(AqsvitError, match="was created with model"):
        aqsvit.quantize(model, data.calib.tensors, data.test, storage=url, study_name="hostile")
    assert not marker.exists() and not (tmp_path / "reports").exists()
    assert optuna.load_study(study_name="hostile", storage=url).user_attrs == before
