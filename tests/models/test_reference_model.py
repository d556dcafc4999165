"""On the trained digits model: quantization behaves as the schemes promise."""
from __future__ import annotations

import torch

from aqsvit.quant import uniform_assignment


def test_reference_trains_to_97_percent(reference):
    assert reference.fp_accuracy >= 97.0


def test_uniform_8_bits_keeps_accuracy_2_bits_destroys_it(evaluator):
    eight = evaluator.measure(uniform_assignment(evaluator.layers, "uniform", 8))
    two = evaluator.measure(uniform_assignment(evaluator.layers, "uniform", 2))
    assert eight.drop <= 0.5
    assert two.drop >= 20.0
    assert eight.weight_compression == 4.0 and two.weight_compression == 16.0
    assert two.energy_nj < eight.energy_nj < evaluator.fp_energy_nj


def test_measuring_leaves_the_fp_model_untouched(evaluator):
    before = {k: v.clone() for k, v in evaluator.model.state_dict().items()}
    evaluator.measure(uniform_assignment(evaluator.layers, "pot", 3))
    assert all(torch.equal(v, before[k]) for k, v in evaluator.model.state_dict().items())
    assert evaluator.measure({}).accuracy == evaluator.fp_accuracy
