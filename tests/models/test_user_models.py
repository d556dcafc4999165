"""Quantizing models from outside the aqsvit package (issue 19): model.target and aqsvit.quantize.

The models live in tests/user_models/ and are never registered."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

import aqsvit
from aqsvit.data import load_dataset
from aqsvit.errors import AqsvitError
from aqsvit.models import create_model, load_checkpoint
from aqsvit.models.target import check_classifier, target_spec
from aqsvit.quant import quantizable_layers
from aqsvit.search.space import SearchSpace

ROOT = Path(__file__).resolve().parents[2]
CNN = "tests.user_models.cnn:spiking_cnn"
TRANSFORMER = "tests.user_models.transformer:spiking_transformer"
BLOCKS = {CNN: ["stages.0", "stages.1", "stages.2", "classifier"],
          TRANSFORMER: ["embed", "encoder.layer.0", "encoder.layer.1", "classifier"]}


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "aqsvit.cli", *args], capture_output=True, text=True,
                          timeout=900, cwd=cwd, env=env)


@pytest.mark.parametrize("target", [CNN, TRANSFORMER])
def test_blocks_are_the_models_own(target):
    """search.granularity=block groups by the repeated children of the main ModuleList/Sequential."""
    model = create_model(target_spec(target))
    space = SearchSpace.from_layers(quantizable_layers(model), ("uniform",), (8, 4), "block")
    assert [u.name for u in space.units] == BLOCKS[target]


def test_fused_qkv_found_by_use_not_name():
    from tests.user_models.fused import DeclaredMixer, Mixer
    names = [layer.name for layer in quantizable_layers(Mixer())]
    assert "mix.q" in names and "mix.k" in names and "mix.v" in names
    assert "widen" in names and "widen.q" not in names  # same shape, never split and multiplied
    assert "mix" in [layer.name for layer in quantizable_layers(Mixer(), split_qkv=False)]
    declared = quantizable_layers(DeclaredMixer())
    assert "widen.q" in [layer.name for layer in declared] and "mix" in [layer.name for layer in declared]
    assert {layer.block for layer in declared} == {"embed", "mix", "widen", "narrow", "head"}


def test_spikformer_structure_unchanged():
    """The registered Spikformer keeps its layer names and blocks (the fused qkv conv split)."""
    layers = quantizable_layers(create_model("spikformer_digits"))
    assert len(layers) == 18
    assert [layer.name for layer in layers if layer.name.endswith((".q", ".k", ".v"))] == [
        f"blocks.{b}.attn.qkv_conv_bn.0.{p}" for b in (0, 1) for p in "qkv"]
    assert sorted({layer.block for layer in layers}) == ["blocks.0", "blocks.1", "head", "patch_embed"]


BAD = {
    "tests.user_models.nowhere:make": "does not import (ModuleNotFoundError",
    "tests.user_models.bad:missing": "does not import (module tests.user_models.bad has no attribute",
    "tests.user_models.bad:not_callable": "is not callable (a int)",
    "tests.user_models.bad:not_a_module": "returned a str, not an nn.Module",
    "tests.user_models.bad:flat_features": "does not map the input shape [N, 1, 8, 8] to class scores [N, 10] "
                                           "(got (2, 64) for N=2)",
}


def _python_error(target: str) -> str:
    with pytest.raises(AqsvitError) as err:
        spec = target_spec(target, input_shape=[1, 8, 8])
        check_classifier(create_model(spec), spec.input_shape, 10, target)
    return str(err.value)


@pytest.mark.parametrize("target", sorted(BAD))
def test_bad_target_is_one_line(target):
    """From Python an AqsvitError; from the CLI the same text as one line, exit 2."""
    text = _python_error(target)
    assert text.startswith(f"model.target: {target!r} {BAD[target]}")
    result = cli("train", f"model.target={target}", "model.input_shape=[1,8,8]", "progress=false")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"aqsvit: error: {text}"]


def test_target_without_input_shape_says_so(tmp_path):
    with pytest.raises(AqsvitError, match=r"^model.target: .* does not say its input shape; set model.input_shape"):
        target_spec("tests.user_models.bad:flat_features")
    with pytest.raises(AqsvitError, match=r"^model.kwargs.depthh: not an argument of"):
        target_spec(TRANSFORMER, {"depthh": 3})


# ---- end to end: CLI and Python API on both models ---------------------------------------------

EPOCHS = {CNN: 8, TRANSFORMER: 4}
CHOSEN = re.compile(r"^\| chosen +\| ([\d.]+) +\| (-?[\d.]+) ")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("user_models")


def _common(work: Path, target: str) -> list[str]:
    return [f"model.target={target}", f"train.epochs={EPOCHS[target]}", f"checkpoint_dir={work}/ck",
            f"storage.url=sqlite:///{work}/studies.db", "progress=false", f"report.dir={work}/reports",
            f"finetune.dir={work}/finetune", "quant.schemes=[uniform]", "quant.bits=[8,4,2]"]


def _drop(stdout: str) -> float:
    return next(float(m.group(2)) for line in stdout.splitlines() if (m := CHOSEN.match(line)))


@pytest.mark.slow
@pytest.mark.parametrize("target", [CNN, TRANSFORMER])
def test_cli_search_resume_report_finetune(work, target):
    common = _common(work, target)
    first = cli("search", *common)
    assert first.returncode == 0, first.stderr
    assert _drop(first.stdout) <= 1.0
    name = target.split(":")[1]
    study_name = f"{name}-digits-greedy"
    assert f"study {study_name!r}" in first.stdout
    storage = f"sqlite:///{work}/studies.db"
    trials = len(optuna.load_study(study_name=study_name, storage=storage).trials)

    again = cli("search", *common)  # resumes the finished study: same result, no new trial
    assert again.returncode == 0, again.stderr
    assert len(optuna.load_study(study_name=study_name, storage=storage).trials) == trials
    assert [line for line in again.stdout.splitlines() if line.startswith("| chosen")] == \
           [line for line in first.stdout.splitlines() if line.startswith("| chosen")]

    blocks = cli("search", *common, "search.granularity=block", f"search.study_name={name}-blocks")
    assert blocks.returncode == 0, blocks.stderr
    units = [line.split("|")[1].strip() for line in blocks.stdout.splitlines()
             if line.startswith("| ") and line.count("|") == 4][1:]
    assert units == BLOCKS[target]
    assert _drop(blocks.stdout) <= 1.0

    report = cli("report", *common)
    assert report.returncode == 0, report.stderr
    from aqsvit.report.export import load_packed
    packed, assignment = load_packed(work / "reports" / study_name / "model.aqsv", target=target)
    assert packed.spec.target == target and assignment

    tuned = cli("finetune", *common, "finetune.epochs=1", "finetune.candidates=1")
    assert tuned.returncode == 0, tuned.stderr
    assert "fine-tuned 1 assignment(s)" in tuned.stdout


@pytest.mark.slow
@pytest.mark.parametrize("target", [CNN, TRANSFORMER])
def test_python_api_search_resumes(work, target):
    from aqsvit.training import get_reference, reference_path
    spec = target_spec(target)
    data = load_dataset("digits", spec.input_shape, seed=0)
    ckpt = get_reference(spec, data, root=work / "ck", progress=False, seed=0, epochs=EPOCHS[target])
    model = ckpt.build()
    model.spec = None  # a user's model as it is: no aqsvit spec
    storage = f"sqlite:///{work}/api.db"
    result = aqsvit.quantize(model, data.calib.tensors, data.test, delta=1.0, storage=storage, study_name=target)
    assert result.drop <= 1.0 and result.compression > 1
    assert result.fp_accuracy == pytest.approx(ckpt.fp_accuracy)
    trials = len(result.study.trials)
    again = aqsvit.quantize(model, torch.utils.data.DataLoader(data.calib, batch_size=50), data.test,
                            delta=1.0, storage=storage, study_name=target)
    assert len(again.study.trials) == trials and again.assignment == result.assignment

    from aqsvit.report.export import load_packed
    path = result.export(work / f"{spec.name}.aqsv")
    fresh = ckpt.build()
    packed, assignment = load_packed(path, fresh)
    assert assignment == {k: v for k, v in result.assignment.items() if v[0] != "fp32"}
    applied = result.apply(ckpt.build())
    for name, tensor in applied.state_dict().items():
        assert torch.allclose(tensor, packed.state_dict()[name], atol=1e-6), name
    points = result.front  # read back from the study: least memory first, each more accurate
    assert [p.memory_bytes for p in points] == sorted(p.memory_bytes for p in points)
    assert [p.accuracy for p in points] == sorted(p.accuracy for p in points)
    assert result.pick(1.0).memory_bytes == result.memory_bytes and result.pick(1.0).drop <= 1.0
    assert result.pick(100.0).assignment == points[0].assignment
    with pytest.raises(AqsvitError, match="^delta: got -1"):
        result.pick(-1)
    cached = reference_path(work / "ck", spec, data, seed=0, epochs=EPOCHS[target])
    assert load_checkpoint(cached, target=target).spec == spec


def _docs_example() -> str:
    """The first Python block of the docs page "Quantize your own model"."""
    text = (ROOT / "docs" / "guides" / "quantize-your-model.md").read_text()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def test_docs_example_is_the_example_file():
    assert _docs_example() == (ROOT / "examples" / "quantize_your_model.py").read_text()


@pytest.mark.slow
def test_docs_example_runs(tmp_path):
    """The docs page's code block (the example file) runs as written, within delta, and exports."""
    script = tmp_path / "docs_example.py"
    script.write_text(_docs_example())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    drop = float(re.search(r"\(drop (-?[\d.]+)\)", result.stdout).group(1))
    assert drop <= 1.0
    assert (tmp_path / "model.aqsv").is_file() and (tmp_path / "quantize_your_model.db").is_file()


def test_api_with_an_evaluation_callable_and_no_neurons(tmp_path):
    """A model without spiking neurons searches on its logit drift; ``evaluate`` measures accuracy."""
    from aqsvit.evaluation import accuracy
    from tests.user_models.fused import Mixer

    data = load_dataset("digits", (1, 8, 8), seed=0)
    torch.manual_seed(0)
    model = Mixer()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = data.train.tensors
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    calls = []

    def evaluate(m: torch.nn.Module) -> float:
        calls.append(1)
        return accuracy(m, data.test)

    result = aqsvit.quantize(model, data.calib.tensors, evaluate=evaluate, delta=1.0,
                             storage=f"sqlite:///{tmp_path}/e.db", bits=(8, 4, 2))
    assert result.fp_accuracy > 50 and result.drop <= 1.0 and result.compression > 1
    assert {"mix.q", "mix.k", "mix.v"} <= set(result.assignment)
    assert not result.search.settings.staged and len(calls) > 2
    with pytest.raises(AqsvitError, match="^evaluation: give exactly one"):
        aqsvit.quantize(model, data.calib.tensors, data.test, evaluate=evaluate)
    with pytest.raises(AqsvitError, match="^model: got a str"):
        aqsvit.quantize("model", data.calib.tensors, data.test)
    with pytest.raises(AqsvitError, match="^calibration: got int"):
        aqsvit.quantize(model, 3, data.test)
    with pytest.raises(AqsvitError, match="^granularityy: not a setting"):
        aqsvit.quantize(model, data.calib.tensors, data.test, granularityy="block")


@pytest.mark.parametrize("target, steps", [(CNN, 2), (TRANSFORMER, 2)])
def test_drift_capture_at_every_neuron_multi_and_single_step(target, steps):
    """Multi-step nodes give v_seq; single-step nodes (the model loops over time) are stacked per step."""
    from aqsvit.proxy.capture import capture, lif_layers
    from aqsvit.proxy.drift import drift
    from aqsvit.proxy.reference import compute_reference

    model = create_model(target_spec(target)).eval()
    x = torch.rand(3, 1, 8, 8)
    cap = capture(model, x)
    assert set(cap.v) == set(lif_layers(model)) and len(cap.v) >= 3
    for name, v in cap.v.items():
        assert v.shape[:2] == (steps, 3) and v.shape == cap.spikes[name].shape, name
    reference = compute_reference(model, torch.utils.data.TensorDataset(x, torch.zeros(3, dtype=torch.long)), 3, 3, ())
    assert drift(model, reference).values["v"] == 0.0
