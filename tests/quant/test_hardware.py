"""Hardware targets: which codes a chip holds, what they cost as it stores them, and quantizers
whose scales take the chip's form (per layer, powers of two)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aqsvit.errors import AqsvitError
from aqsvit.quant import LayerQuantizer, quantizable_layers, quantize, size_report
from aqsvit.hardware import ANY, LAYER, TARGETS, HardwareTarget, ScaleForm
from aqsvit.quant.quantizers import pot_exponents, uniform_levels
from aqsvit.search.space import SearchSpace

# a byte-aligned integer target written out here, apart from the shipped profiles
BYTES = HardwareTarget("bytes-test", {"uniform": (2, 3, 4, 5, 6, 8), "pot": (2, 3, 4, 5)},
                       containers=(2, 4, 8), integer=True)
LAYER_SHIFT = ScaleForm(per=LAYER, power_of_two=True, bits=8)


def weights(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("scheme", ["uniform", "pot"])
def test_any_counts_packed_codes_and_a_float_scale_per_channel(scheme, bits):
    for numel, out in ((36, 4), (7, 1), (1000, 10)):
        assert ANY.layer_bytes(numel, out, scheme, bits) == math.ceil(numel * bits / 8) + 4 * out
    assert ANY.holds(scheme, bits) and ANY.stored_bits(scheme, bits) == bits


def test_containers_round_codes_up_and_power_of_two_codes_take_their_integer_width():
    # uniform: the smallest container holding the code
    assert [BYTES.stored_bits("uniform", b) for b in (2, 3, 4, 5, 6, 8)] == [2, 4, 4, 8, 8, 8]
    # pot b bits stands for integers up to 2^(2^(b-1)-2): 2, 4, 8 and 16 signed bits
    assert [BYTES.stored_bits("pot", b) for b in (2, 3, 4)] == [2, 4, 8]
    assert not BYTES.holds("pot", 5)  # needs 16 bits, no such container
    assert not BYTES.holds("uniform", 7)  # not among its widths
    # 100 weights at 5 bits in byte containers: 100 bytes, + 10 FP32 scales
    assert BYTES.layer_bytes(100, 10, "uniform", 5) == 100 + 40
    assert BYTES.layer_bytes(100, 10, "uniform", 3) == 50 + 40


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_layer_power_of_two_scale_is_one_shift_and_clips_nothing(bits):
    w = weights(6, 5)
    step, level = uniform_levels(w, bits, LAYER_SHIFT)
    assert step.numel() == 1
    assert torch.log2(step).item() == round(torch.log2(step).item())  # a power of two
    qmax = 2 ** (bits - 1) - 1
    assert level.abs().max() <= qmax and torch.equal(level, level.round())
    assert (quantize(w, "uniform", bits, LAYER_SHIFT) - w).abs().max() <= step / 2 + 1e-7  # rounding only


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_power_of_two_codes_are_integers_of_their_stated_width(bits):
    w = weights(8, 9)
    a, k = pot_exponents(w, bits, LAYER_SHIFT)
    kmax = 2 ** (bits - 1) - 2
    unit = a * 2.0 ** -kmax  # the scale the integer is multiplied by
    integer = quantize(w, "pot", bits, LAYER_SHIFT) / unit
    assert torch.equal(integer, integer.round())
    assert integer.abs().max() <= 2 ** kmax < 2 ** (BYTES.code_width("pot", bits) - 1)


def test_per_channel_default_is_todays_quantizer():
    w = weights(4, 12)
    amax = w.abs().amax(1, keepdim=True)
    assert torch.equal(quantize(w, "uniform", 4), torch.clamp(torch.round(w / (amax / 7)), -7, 7) * (amax / 7))


@pytest.mark.parametrize("per", ["channel", "layer"])
def test_full_range_uses_the_negative_extra_level_only_where_the_negative_extreme_dominates(per):
    full = ScaleForm(per=per, full_range=True)
    w = torch.tensor([[-1.0, 0.5, 0.25, 0.0], [1.0, -0.5, 0.25, 0.0]])
    step, level = uniform_levels(w, 8, full)
    # row 0: the step 1/128 puts -1 on -128; row 1 (positive extreme): 1/127, today's symmetric step
    if per == "channel":
        assert torch.equal(step.ravel(), torch.tensor([1 / 128, 1 / 127]))
        assert level[0].tolist() == [-128, 64, 32, 0] and level[1].tolist() == [127, -64, 32, 0]
    else:  # one step for both rows: |-1| and |1| tie, and 1/127 is the larger
        assert torch.equal(step.ravel(), torch.tensor([1 / 127]))
        assert level.min() == -127 and level.max() == 127
    assert torch.equal(quantize(quantize(w, "uniform", 8, full), "uniform", 8, full), quantize(w, "uniform", 8, full))
    assert torch.equal(quantize(torch.zeros(2, 3), "uniform", 4, full), torch.zeros(2, 3))  # all zero stays zero


def test_space_walks_only_held_codes_that_save_memory():
    space = SearchSpace.from_units({"a": 10, "b": 30}, ("uniform", "pot"), (8, 6, 5, 4, 3, 2), BYTES)
    # 5 and 6 bits cost 8 in a byte container like 8 bits, 3 costs 4 like 4: only the widest of
    # each container is worth walking; pot 4 stores 8 bits, pot 5 is not held
    assert space.start == ("uniform", 8)
    assert space.candidates() == [("uniform", 2), ("pot", 2), ("uniform", 4), ("pot", 3)]  # in one container: wider first
    assert space.cost({"a": ("uniform", 3), "b": ("pot", 4)}) == 10 * 4 + 30 * 8
    any_space = SearchSpace.from_units({"a": 10}, ("uniform", "pot"), (8, 4, 2))
    assert any_space.candidates() == [("uniform", 2), ("pot", 2), ("uniform", 4), ("pot", 4)]


def test_a_target_that_holds_nothing_asked_is_one_line():
    with pytest.raises(AqsvitError, match="target bytes-test holds none of .*pot.*7"):
        SearchSpace.from_units({"a": 10}, ("pot",), (7, 6), BYTES)


def test_applied_assignment_refuses_codes_the_target_cannot_store_and_counts_as_stored():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(16, 3, bias=False))
    layers = quantizable_layers(model)
    with pytest.raises(AqsvitError, match=r"assignment\[0\]: target bytes-test does not hold pot 5-bit"):
        with LayerQuantizer(model, target=BYTES).applied({"0": ("pot", 5)}):
            pass
    report = size_report(model, layers, {"0": ("uniform", 3), "2": ("uniform", 5)}, BYTES)
    # conv: 36 codes x 4 bits + 4 scales; linear 48 x 8 bits + 3 scales; conv bias 4 floats
    assert report.memory_bytes == (18 + 16) + (48 + 12) + 4 * 4
    assert report.effective_bits == pytest.approx((36 * 4 + 48 * 8) / 84)


def test_registry_refuses_what_is_not_a_target():
    from aqsvit.hardware import register_target
    with pytest.raises(AqsvitError, match="not a HardwareTarget"):
        register_target({"name": "x"})
    assert "any" in TARGETS.names()


@pytest.mark.parametrize("name", [n for n in TARGETS.names() if n != "any"])
def test_every_chip_profile_walks_what_it_stores_and_cites_its_source(name):
    target = TARGETS[name]
    assert target.source and target.integer and not target.holds("fp32", 32)
    space = SearchSpace.from_units({"a": 64}, ("uniform", "pot", "fp32"), (8, 7, 6, 5, 4, 3, 2), target)
    assert space.start[0] != "fp32" and target.holds(*space.start)
    for choice in space.candidates():
        assert target.holds(*choice)
        assert target.code_width(*choice) <= target.stored_bits(*choice) <= max(target.containers)
    stored = [space.choice_bits(c) for c in space.candidates()]
    assert stored == sorted(stored)
