"""Integer weight codes as an integer chip holds them: signed integers times the layer's scales.

``codes * scale`` equals :func:`aqsvit.quant.quantizers.quantize` bit for bit (the same products of
powers of two and the same step), so a model rebuilt from the integers evaluates exactly as the
search measured it. A power-of-two code ``sign * a * 2^-k`` is the integer ``sign * 2^(kmax - k)``
with the scale ``a * 2^-kmax``.
"""
from __future__ import annotations

import torch

from aqsvit.hardware import HardwareTarget
from aqsvit.quant.quantizers import check_scheme_bits, pot_exponents, uniform_levels


def integer_codes(w: torch.Tensor, scheme: str, bits: int, target: HardwareTarget) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed integer codes (int32, shaped like ``w``) and the scales they multiply (per channel
    ``[C, 1, ...]`` or one ``[1, ...]`` per layer, float32), in ``target``'s scale form."""
    check_scheme_bits(scheme, bits)
    if scheme == "fp32":
        raise ValueError("fp32 weights have no integer codes")
    if scheme == "uniform":
        step, level = uniform_levels(w, bits, target.scale)
        return level.to(torch.int32), step.to(torch.float32)
    a, k = pot_exponents(w, bits, target.scale)
    kmax = 2 ** (bits - 1) - 2
    magnitude = torch.where(k >= 0, torch.exp2(kmax - k), torch.zeros_like(k))
    return (torch.sign(w) * magnitude).to(torch.int32), (a * 2.0 ** -kmax).to(torch.float32)


def dequantize(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The weights a chip computes with: integer codes times their scales."""
    return codes.to(torch.float32) * scale


def scale_exponent(scale: torch.Tensor) -> torch.Tensor:
    """``log2`` of power-of-two scales, as the integers a chip stores (e.g. Lava's ``weight_exp``)."""
    exponent = torch.log2(scale)
    if not torch.equal(exponent, exponent.round()):
        raise ValueError("scale_exponent: the scales are not powers of two")
    return exponent.to(torch.int32)
