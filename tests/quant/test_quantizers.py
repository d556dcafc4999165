"""Property tests of the two schemes on random tensors (the definitions in aqsvit/quant/quantizers.py)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aqsvit.errors import AqsvitError
from aqsvit.quant import pot, quantize, uniform
from aqsvit.quant.quantizers import pot_exponents

BITS = st.integers(2, 8)
SCHEME = st.sampled_from(["uniform", "pot"])


def weights(seed: int, out: int, per: int, zero_frac: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, per, generator=g) * torch.rand(out, 1, generator=g) * 3
    w[torch.rand(out, per, generator=g) < zero_frac] = 0.0
    return w


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), out=st.integers(1, 8), per=st.integers(1, 300), bits=BITS, scheme=SCHEME)
def test_at_most_2_pow_b_distinct_values_per_channel(seed, out, per, bits, scheme):
    q = quantize(weights(seed, out, per), scheme, bits)
    for row in q:
        assert len(torch.unique(row)) <= 2 ** bits


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), out=st.integers(1, 8), per=st.integers(1, 300), bits=BITS)
def test_pot_values_are_signed_scale_times_power_of_two(seed, out, per, bits):
    w = weights(seed, out, per)
    q = pot(w, bits)
    scale = w.abs().amax(1, keepdim=True).expand_as(w)
    nz = q != 0
    if not nz.any():  # each channel's largest weight maps to +-a, so only all-zero w gets here
        assert torch.all(w == 0)
        return
    ratio = q[nz].abs() / scale[nz]
    k = -torch.log2(ratio)
    assert torch.equal(k, k.round())
    assert k.min() >= 0 and k.max() <= 2 ** (bits - 1) - 2
    assert torch.equal(torch.sign(q[nz]), torch.sign(w[nz]))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), out=st.integers(1, 8), per=st.integers(1, 300), bits=BITS, scheme=SCHEME)
def test_quantizing_twice_equals_once_and_zeros_stay_zero(seed, out, per, bits, scheme):
    w = weights(seed, out, per, zero_frac=0.3)
    once = quantize(w, scheme, bits)
    assert torch.equal(quantize(once, scheme, bits), once)
    assert torch.all(once[w == 0] == 0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), out=st.integers(1, 8), per=st.integers(1, 300), bits=st.integers(2, 7))
def test_pot_error_never_grows_with_bits_elementwise(seed, out, per, bits):
    w = weights(seed, out, per)
    assert torch.all((pot(w, bits + 1) - w).abs() <= (pot(w, bits) - w).abs() + 1e-7)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), out=st.integers(1, 8), per=st.integers(64, 300), bits=st.integers(2, 7))
def test_uniform_error_never_grows_with_bits(seed, out, per, bits):
    # Uniform grids are not nested (b=3 has m/3, b=4 does not), so single weights can get worse;
    # the guarantee is the half-step bound per weight and the mean error per tensor.
    w = weights(seed, out, per, zero_frac=0.0)
    step = lambda b: w.abs().amax(1, keepdim=True) / (2 ** (b - 1) - 1)  # noqa: E731
    for b in (bits, bits + 1):
        assert torch.all((uniform(w, b) - w).abs() <= step(b) / 2 + 1e-6)
    assert ((uniform(w, bits + 1) - w) ** 2).mean() <= ((uniform(w, bits) - w) ** 2).mean()


def test_pot_zero_code_and_levels_by_hand():
    w = torch.tensor([[1.0, -0.5, 0.26, 0.2, 0.0, -0.1]])
    # 3 bits: k in {0,1,2}; 0.26 -> log2 ratio 1.94 -> k=2 -> 0.25; 0.2 -> 2.32 -> 0.25;
    # 0.1 -> 3.32 rounds to k=3 > 2 -> zero.
    assert pot(w, 3).tolist() == [[1.0, -0.5, 0.25, 0.25, 0.0, 0.0]]
    scale, k = pot_exponents(w, 3)
    assert scale.item() == 1.0 and k.tolist() == [[0, 1, 2, 2, -1, -1]]


def test_uniform_by_hand():
    w = torch.tensor([[3.0, -1.4, 0.4, 0.0]])
    # 3 bits: qmax=3, s=1: round -> 3, -1, 0, 0
    assert uniform(w, 3).tolist() == [[3.0, -1.0, 0.0, 0.0]]


def test_all_zero_channel_stays_zero():
    w = torch.zeros(2, 5)
    for scheme in ("uniform", "pot"):
        assert torch.equal(quantize(w, scheme, 4), w)


@pytest.mark.parametrize("scheme,bits,field", [("int", 4, "scheme"), ("uniform", 9, "bits"),
                                               ("pot", 1, "bits"), ("uniform", 0, "bits")])
def test_bad_scheme_or_bits_names_the_field(scheme, bits, field):
    with pytest.raises(AqsvitError, match=rf"{field}: got .*; allowed: "):
        quantize(torch.ones(2, 2), scheme, bits)
