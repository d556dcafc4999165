"""Memory, effective bits, energy and assignment handling on hand-countable models."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from aqsvit.errors import AqsvitError
from aqsvit.quant import LayerQuantizer, energy_pj, measure_activity, op_energy, quantizable_layers, size_report


def toy() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=True), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 3))


def test_memory_and_effective_bits_match_a_hand_count():
    model = toy()
    layers = quantizable_layers(model)
    assert [(l.name, l.numel, l.out_channels) for l in layers] == [("0", 36, 4), ("3", 48, 3)]
    report = size_report(model, layers, {"0": ("uniform", 4), "3": ("pot", 3)})
    # everything FP32: conv 36+4, BN 4+4 params + 4+4 running stats, linear 48+3 = 107 numbers
    assert report.fp32_bytes == 107 * 4
    # conv: 36 weights x 4 bits = 18 B + 4 scales x 4 B; linear: 48 x 3 bits = 18 B + 3 x 4 B;
    # the other 23 numbers (biases, BatchNorm) stay FP32
    assert report.memory_bytes == (18 + 16) + (18 + 12) + 23 * 4
    assert report.effective_bits == pytest.approx((36 * 4 + 48 * 3) / 84)
    assert report.weight_compression == pytest.approx(32 / report.effective_bits)
    assert report.model_compression == pytest.approx(428 / 156)


def test_unassigned_layers_count_as_fp32():
    model = toy()
    layers = quantizable_layers(model)
    report = size_report(model, layers, {"0": ("uniform", 4)})
    assert report.effective_bits == pytest.approx((36 * 4 + 48 * 32) / 84)
    assert report.memory_bytes == 34 + 48 * 4 + 23 * 4


def test_odd_bit_counts_round_up_per_layer():
    model = nn.Sequential(nn.Linear(3, 1, bias=False))
    layers = quantizable_layers(model)
    # 3 weights x 3 bits = 9 bits -> 2 bytes, + one 4-byte scale
    assert size_report(model, layers, {"0": ("uniform", 3)}).memory_bytes == 6


def test_apply_restores_fp_weights_and_quantizes_only_inside():
    model = toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantizer = LayerQuantizer(model)
    with quantizer.applied({"0": ("uniform", 2)}):
        assert len(torch.unique(model[0].weight[0])) <= 4
        assert not torch.equal(model[0].weight, before["0.weight"])
        assert torch.equal(model[3].weight, before["3.weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    with pytest.raises(RuntimeError), quantizer.applied({"3": ("pot", 4)}):
        raise RuntimeError("evaluation failed")
    assert torch.equal(model[3].weight, before["3.weight"])


@pytest.mark.parametrize("assignment,match", [
    ({"nope": ("uniform", 4)}, r"assignment layer: got 'nope'; allowed: 0, 3"),
    ({"0": ("int", 4)}, r"0.scheme: got 'int'; allowed: uniform, pot, fp32"),
    ({"0": ("uniform", 9)}, r"0.bits: got 9; allowed: integers 2..8"),
])
def test_bad_assignment_is_one_clear_line(assignment, match):
    quantizer = LayerQuantizer(toy())
    with pytest.raises(AqsvitError, match=match), quantizer.applied(assignment):
        pass


class DeclaredQKV(nn.Sequential):
    """A fused layer is split because the model says so (or by use, tests/models/test_user_models.py), not by its name."""

    def aqsvit_fused_qkv(self) -> list[str]:
        return ["qkv"]


def test_qkv_split_into_three_output_blocks():
    model = DeclaredQKV()
    model.add_module("qkv", nn.Conv1d(4, 12, 1, bias=False))
    names = [(l.name, l.out_start, l.out_stop) for l in quantizable_layers(model)]
    assert names == [("qkv.q", 0, 4), ("qkv.k", 4, 8), ("qkv.v", 8, 12)]
    assert [l.name for l in quantizable_layers(model, split_qkv=False)] == ["qkv"]
    quantizer = LayerQuantizer(model)
    fp = model.qkv.weight.detach().clone()
    with quantizer.applied({"qkv.k": ("uniform", 2)}):
        w = model.qkv.weight
        assert torch.equal(w[:4], fp[:4]) and torch.equal(w[8:], fp[8:])
        assert not torch.equal(w[4:8], fp[4:8])


def test_energy_counts_macs_for_dense_inputs_and_acs_for_spikes():
    model = nn.Sequential(nn.Linear(4, 2, bias=False), nn.Linear(2, 3, bias=False))
    layers = quantizable_layers(model)
    spikes = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    act = measure_activity(model, layers[:1], [spikes])
    assert act["0"].spiking and act["0"].macs == 8 and act["0"].rate == pytest.approx(0.5)
    dense = measure_activity(model, layers, [torch.rand(2, 4) + 0.1])
    assert not dense["0"].spiking and dense["0"].ops == 8
    fp = energy_pj(act, {})
    assert fp == pytest.approx(4 * 0.9)  # 8 synapses x rate 0.5 accumulates at 0.9 pJ
    assert energy_pj(act, {"0": ("uniform", 8)}) == pytest.approx(4 * 0.03)
    assert op_energy("fp32", 32, spiking=False) == pytest.approx(4.6)
    assert op_energy("pot", 8, spiking=False) < op_energy("uniform", 8, spiking=False)
