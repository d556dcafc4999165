"""Quantization-aware fine-tuning: it recovers real accuracy, and its export reproduces it exactly."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import optuna
import pytest
import torch

from aqsvit.evaluation import accuracy
from aqsvit.finetune import FinetuneSettings, finetune, finetune_front, front_candidates
from aqsvit.errors import AqsvitError
from aqsvit.quant import fake_quantized, quantize
from aqsvit.report.export import load_packed, read_assignment, save_packed


def aggressive(evaluator):
    """2-bit everywhere but the first layer."""
    return {name: ("uniform", 2) for name in evaluator.quantizer.names[1:]}


def test_fake_quantized_forward_is_the_quantized_weight_and_gradients_pass_straight_through(evaluator):
    import copy
    model = copy.deepcopy(evaluator.model)
    layer = evaluator.layers[3]
    module = dict(model.named_modules())[layer.module_name]
    latent = module.weight.detach().clone()
    with fake_quantized(model, {layer.name: ("pot", 3)}):
        w = module.weight
        rows = slice(layer.out_start, layer.out_stop)
        assert torch.equal(w[rows], quantize(latent[rows], "pot", 3))
        outside = torch.ones(latent.shape[0], dtype=torch.bool)
        outside[rows] = False
        assert torch.equal(w[outside], latent[outside])  # rows of other (FP32) layers untouched
        (w * 2).sum().backward()
        grad = module.parametrizations.weight.original.grad
        assert torch.equal(grad, torch.full_like(latent, 2.0))
    assert torch.equal(module.weight, latent) and type(module.weight) is torch.nn.Parameter


def test_finetune_recovers_an_aggressive_assignment_and_its_export_reproduces_it(evaluator, tmp_path):
    assignment = aggressive(evaluator)
    result = finetune(evaluator, assignment, FinetuneSettings(epochs=3, lr=1e-3), progress=False)
    n = len(evaluator.test)
    p = min(result.before.accuracy, result.after.accuracy) / 100
    noise = 100 * math.sqrt(max(p * (1 - p), 1 / n) / n)  # binomial standard error of one evaluation
    gain = result.after.accuracy - result.before.accuracy
    print(f"fine-tune: {result.before.accuracy:.2f}% -> {result.after.accuracy:.2f}% in {result.seconds:.1f} s "
          f"(noise {noise:.2f} points)")
    assert gain > 5 * noise
    assert evaluator.measure(assignment) == result.before  # the reference model was not touched
    path = save_packed(tmp_path / "tuned.aqsv", result.evaluator.model, assignment)
    model, packed = load_packed(path)
    assert packed == assignment
    assert accuracy(model, result.evaluator.test) == result.after.accuracy


def test_finetune_front_keeps_the_smallest_within_delta(evaluator):
    names = evaluator.quantizer.names
    small, large = aggressive(evaluator), {n: ("uniform", 4) for n in names}
    best, tried = finetune_front(evaluator, [large, small], delta=100.0, settings=FinetuneSettings(epochs=1),
                                 progress=False)
    assert best is tried[0] and best.assignment == small  # smallest first, and it already meets delta
    with pytest.raises(AqsvitError, match="finetune.delta"):
        finetune_front(evaluator, [small], delta=-1)
    with pytest.raises(AqsvitError, match="finetune.epochs"):
        finetune(evaluator, small, FinetuneSettings(epochs=0))


@pytest.mark.slow
def test_cli_finetunes_a_study_export_and_writes_a_reproducible_model(finished_search, digits_data, tmp_path):
    exported = finished_search["report"] / "assignment.json"
    out = subprocess.run([sys.executable, "-m", "aqsvit.cli", "finetune", f"finetune.assignment={exported}",
                          "finetune.epochs=1", f"finetune.dir={tmp_path}", "progress=false"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / finished_search["report"].name
    spec, assignment = read_assignment(folder / "assignment.json")
    metrics = json.loads((folder / "assignment.json").read_text())["metrics"]
    model, packed = load_packed(folder / "model.aqsv")
    assert packed == {k: v for k, v in assignment.items() if v[0] != "fp32"}
    assert accuracy(model, digits_data.test) == metrics["accuracy"]
    assert "after" in out.stdout and "chosen" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "aqsvit.cli", "finetune", "finetune.epochs=0"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "aqsvit: error: finetune.epochs: got 0; allowed: integers >= 1"]


def test_front_candidates_count_each_assignment_once_with_its_whole_split_accuracy():
    """A screened result and its verification are one assignment: fine-tuning it twice wastes a
    candidate, and the screened accuracy (an upper bound) must not hide the measured one."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    dist = {"w": optuna.distributions.CategoricalDistribution(["a", "b", "c", "d"])}

    def add(w, acc, mem, screened=False, error=-1.0):
        study.add_trial(optuna.trial.create_trial(values=[acc, mem], params={"w": w}, distributions=dist,
                                                  user_attrs={"screened": True} if screened else {},
                                                  constraints={"error": error}))
    add("a", 96.0, 100, screened=True)
    add("a", 95.5, 100)             # a's verification: lower than its screen said
    add("b", 96.5, 110, screened=True)
    add("b", 96.5, 110)
    add("c", 97.0, 120, error=0.5)  # infeasible under the search's delta
    add("d", 98.2, 130)             # the smallest already within 1 point of 99
    picked = front_candidates(study, 3, 99.0, 1.0)
    assert [(t.params["w"], t.values[0], bool(t.user_attrs.get("screened"))) for t in picked] == [
        ("a", 95.5, False), ("b", 96.5, False), ("d", 98.2, False)]
    assert [t.params["w"] for t in front_candidates(study, 1, 99.0, 1.0)] == ["a", "d"]
    assert [t.params["w"] for t in front_candidates(study, 2, 99.0, 0.1)] == ["a", "b"]  # none within 0.1


@pytest.mark.slow
def test_search_aiming_lower_keeps_a_smaller_assignment_within_the_final_delta(tmp_path):
    """delta=3 post-training, then fine-tune: within 1 point, and never larger than the smallest
    assignment the study already had within 1 point without fine-tuning."""
    out = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", "delta=3", "finetune.delta=1",
                          "finetune.candidates=3", "finetune.epochs=5", f"finetune.dir={tmp_path}/ft",
                          f"storage.url=sqlite:///{tmp_path}/low.db", "search.study_name=low", "progress=false"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    low = json.loads((tmp_path / "ft" / "low" / "assignment.json").read_text())["metrics"]
    study = optuna.load_study(study_name="low", storage=f"sqlite:///{tmp_path}/low.db")
    within = [t.user_attrs["effective_bits"] for t in study.trials
              if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs["drop"] <= 1.0]
    assert low["drop"] <= 1.0
    assert not within or low["effective_bits"] <= min(within)  # the study may hold none within 1 point
    bad = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", "finetune.delta=-1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "finetune.delta: got -1" in bad.stderr
