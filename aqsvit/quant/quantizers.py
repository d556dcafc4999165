"""The two quantization schemes (docs/concepts.md, "Scheme"), per output channel (dim 0), plus fp32
passthrough.

- ``uniform`` b-bit: ``s = max|w| / (2^(b-1) - 1)``, ``w_q = s * clamp(round(w / s))`` (a target
  whose scale form is ``full_range`` also uses the level ``-2^(b-1)``, as sinabs does for Speck).
- ``pot`` b-bit: a sign bit and a (b-1)-bit exponent code with one code reserved for zero:
  ``w_q = sign(w) * a * 2^-k``, ``k in {0 .. 2^(b-1) - 2}``, ``a = max|w|`` per channel, the
  exponent rounded in the log domain; magnitudes that round past the smallest level become zero.
"""
from __future__ import annotations

import torch

from aqsvit.errors import check_int, invalid
from aqsvit.hardware import CHANNEL, ScaleForm

from aqsvit.schemes import MAX_BITS, MIN_BITS, SCHEMES  # noqa: F401  (defined without torch)

PER_CHANNEL = ScaleForm()  # one FP32 scale per output channel: the paper's form, target ``any``


def check_scheme_bits(scheme: str, bits: int, field: str = "assignment") -> None:
    """Raise the standard one-line error when ``scheme``/``bits`` are not supported."""
    if scheme not in SCHEMES:
        raise invalid(f"{field}.scheme", scheme, SCHEMES)
    if scheme != "fp32":
        check_int(f"{field}.bits", bits, MIN_BITS, MAX_BITS)


def _reduce_max(v: torch.Tensor, scale: ScaleForm) -> torch.Tensor:
    """max of ``v`` per output channel (or over the whole layer), shaped to broadcast against it."""
    if scale.per == CHANNEL:
        return v.reshape(v.shape[0], -1).amax(1).reshape(-1, *([1] * (v.ndim - 1)))
    return v.amax().reshape([1] * v.ndim)


def weight_max(w: torch.Tensor, scale: ScaleForm = PER_CHANNEL) -> torch.Tensor:
    """max|w| per output channel (or over the whole layer), shaped to broadcast against ``w``;
    1 where it is all zero."""
    amax = _reduce_max(w.abs(), scale)
    return torch.where(amax > 0, amax, torch.ones_like(amax))


def _uniform_step(w: torch.Tensor, qmax: int, scale: ScaleForm) -> torch.Tensor:
    """The step that maps the extremes onto ``±qmax`` (or, full range, onto ``qmax`` and ``-qmax - 1``)."""
    if not scale.full_range:
        return weight_max(w, scale) / qmax
    step = torch.maximum(_reduce_max(w.clamp(min=0), scale) / qmax, _reduce_max((-w).clamp(min=0), scale) / (qmax + 1))
    return torch.where(step > 0, step, torch.full_like(step, 1 / qmax))


def power_of_two_above(s: torch.Tensor) -> torch.Tensor:
    """The least power of two >= ``s`` (a scale the chip applies as a shift)."""
    return torch.exp2(torch.ceil(torch.log2(s)))


def uniform_levels(w: torch.Tensor, bits: int, scale: ScaleForm = PER_CHANNEL) -> tuple[torch.Tensor, torch.Tensor]:
    """Step (per channel or per layer) and the signed level (``-qmax..qmax``, ``qmax = 2^(b-1) - 1``;
    from ``-qmax - 1`` in the full range) of each weight; a power-of-two step is rounded up, so no
    weight is clipped."""
    qmax = 2 ** (bits - 1) - 1
    step = _uniform_step(w, qmax, scale)
    if scale.power_of_two:
        step = power_of_two_above(step)
    return step, torch.clamp(torch.round(w / step), -qmax - scale.full_range, qmax)


def uniform(w: torch.Tensor, bits: int, scale: ScaleForm = PER_CHANNEL) -> torch.Tensor:
    """Symmetric uniform quantization to ``2^b - 1`` levels."""
    step, level = uniform_levels(w, bits, scale)
    return level * step


def pot_exponents(w: torch.Tensor, bits: int, scale: ScaleForm = PER_CHANNEL) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale ``a`` (per channel or per layer; a power of two when the form says so) and exponent
    ``k`` per weight; ``k = -1`` codes zero."""
    kmax = 2 ** (bits - 1) - 2
    a = weight_max(w, scale)
    if scale.power_of_two:
        a = power_of_two_above(a)
    mag = w.abs() / a
    k = torch.round(-torch.log2(mag.clamp(min=torch.finfo(w.dtype).tiny)))
    k = torch.where((mag == 0) | (k > kmax), torch.full_like(k, -1), k.clamp(min=0))
    return a, k


def pot(w: torch.Tensor, bits: int, scale: ScaleForm = PER_CHANNEL) -> torch.Tensor:
    """Power-of-two quantization: ``sign(w) * a * 2^-k`` or zero."""
    a, k = pot_exponents(w, bits, scale)
    return torch.where(k >= 0, torch.sign(w) * a * torch.exp2(-k), torch.zeros_like(w))


def quantize(w: torch.Tensor, scheme: str, bits: int, scale: ScaleForm = PER_CHANNEL) -> torch.Tensor:
    """Quantize ``w`` with ``scheme`` at ``bits``, its scales in form ``scale`` (``fp32`` returns ``w``)."""
    check_scheme_bits(scheme, bits)
    if scheme == "fp32":
        return w
    return uniform(w, bits, scale) if scheme == "uniform" else pot(w, bits, scale)
