"""Drift, the FP reference cache, tau calibration and the staged stop rule."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from aqsvit.proxy import DEFINITIONS, drift, get_reference
from aqsvit.proxy import reference as reference_module
from aqsvit.proxy.calibrate import calibrate_tau, drop_lower_bound
from aqsvit.proxy.staged import allowed_errors, staged_accuracy
from aqsvit.quant import uniform_assignment


@pytest.fixture(scope="module")
def fp_reference(evaluator):
    modules = tuple(sorted({l.module_name for l in evaluator.layers}))
    return get_reference(evaluator.model, evaluator.data.calib, "test-proxy", images=64, batch_size=32,
                         layer_inputs=modules)


def test_every_definition_is_zero_for_fp_and_grows_from_8_to_2_bits(evaluator, fp_reference):
    with evaluator.quantizer.applied({}) as model:
        fp = drift(model, fp_reference, local=True)
    assert set(fp.values) == set(DEFINITIONS)
    assert all(v == 0.0 for v in fp.values.values()) and all(v == 0.0 for v in fp.per_layer.values())
    results = {}
    for bits in (8, 2):
        with evaluator.quantizer.applied(uniform_assignment(evaluator.layers, "uniform", bits)) as model:
            results[bits] = drift(model, fp_reference, local=True)
    for name in ("logit", "v", "v_max", "spike", "kl", "local"):
        assert results[2].values[name] > results[8].values[name] > 0, name
    assert results[2].values["flip"] > 20


def test_fp_reference_is_computed_once_then_reused(evaluator, tmp_path):
    before = reference_module.BUILDS["computed"]
    first = get_reference(evaluator.model, evaluator.data.calib, "reuse", images=32, batch_size=16, cache_dir=tmp_path)
    again = get_reference(evaluator.model, evaluator.data.calib, "reuse", images=32, batch_size=16, cache_dir=tmp_path)
    assert reference_module.BUILDS["computed"] == before + 1
    assert first.source == again.source == "memory" and again is first
    reference_module._MEMORY.clear()  # a new process: served from disk, not recomputed
    from_disk = get_reference(evaluator.model, evaluator.data.calib, "reuse", images=32, batch_size=16, cache_dir=tmp_path)
    assert from_disk.source == "disk" and reference_module.BUILDS["computed"] == before + 1
    torch.testing.assert_close(from_disk.logits[0], first.logits[0])


def test_calibration_recovers_tau_on_synthetic_monotone_data():
    rng = np.random.default_rng(0)
    drifts = rng.uniform(0, 1, 200)
    true_tau = 0.42
    drops = np.where(drifts > true_tau, 1.0 + 5 * (drifts - true_tau) + 0.3, rng.uniform(0, 0.9, 200))
    assert calibrate_tau(drifts, drops, delta=1.0) == pytest.approx(true_tau, abs=0.01)
    assert calibrate_tau(drifts, np.zeros(200), delta=1.0) == math.inf
    assert calibrate_tau([], [], delta=1.0) == math.inf


def test_paired_calibration_bound():
    assert drop_lower_bound(lost=30, gained=0, n=32) > 50
    assert drop_lower_bound(lost=2, gained=0, n=64) < 1.0  # 3% observed is not proof of > 1 point
    assert drop_lower_bound(lost=0, gained=0, n=64) < 0


class _Fixed(torch.nn.Module):
    """Predicts class 1 for the first ``wrong`` images and the true class (0) after them."""

    def __init__(self, wrong: int) -> None:
        super().__init__()
        self.wrong = wrong
        self.seen = 0

    def forward(self, x):
        out = torch.zeros(len(x), 2)
        for i in range(len(x)):
            out[i, 1 if self.seen + i < self.wrong else 0] = 1.0
        self.seen += len(x)
        return out


def test_staged_evaluation_never_stops_a_feasible_candidate_and_stops_an_infeasible_one():
    data = TensorDataset(torch.zeros(450, 1), torch.zeros(450, dtype=torch.long))
    fp = 98.67  # 444 of 450 right
    budget = allowed_errors(450, fp, 1.0)
    assert budget == 10  # 440 right still meet 97.67
    # errors first: the hardest case for a stop rule, still never stops the feasible candidate
    feasible = staged_accuracy(_Fixed(budget), data, fp, 1.0, batch_size=4)
    assert feasible.accuracy == pytest.approx(100 * 440 / 450) and feasible.images == 450
    infeasible = staged_accuracy(_Fixed(budget + 1), data, fp, 1.0, batch_size=4)
    assert infeasible.accuracy is None and infeasible.images == 12
