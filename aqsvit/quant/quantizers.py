"""The two quantization schemes of DESIGN.md, per output channel (dim 0), plus fp32 passthrough.

- ``uniform`` b-bit: ``s = max|w| / (2^(b-1) - 1)``, ``w_q = s * clamp(round(w / s))``.
- ``pot`` b-bit: a sign bit and a (b-1)-bit exponent code with one code reserved for zero:
  ``w_q = sign(w) * a * 2^-k``, ``k in {0 .. 2^(b-1) - 2}``, ``a = max|w|`` per channel, the
  exponent rounded in the log domain; magnitudes that round past the smallest level become zero.
"""
from __future__ import annotations

import torch

from aqsvit.errors import check_int, invalid

from aqsvit.schemes import MAX_BITS, MIN_BITS, SCHEMES  # noqa: F401  (defined without torch)


def check_scheme_bits(scheme: str, bits: int, field: str = "assignment") -> None:
    """Raise the standard one-line error when ``scheme``/``bits`` are not supported."""
    if scheme not in SCHEMES:
        raise invalid(f"{field}.scheme", scheme, SCHEMES)
    if scheme != "fp32":
        check_int(f"{field}.bits", bits, MIN_BITS, MAX_BITS)


def channel_max(w: torch.Tensor) -> torch.Tensor:
    """max|w| per output channel, shaped to broadcast against ``w``; 1 where a channel is all zero."""
    amax = w.abs().reshape(w.shape[0], -1).amax(1)
    amax = torch.where(amax > 0, amax, torch.ones_like(amax))
    return amax.reshape(-1, *([1] * (w.ndim - 1)))


def uniform_levels(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel step and the signed level (``-qmax..qmax``, ``qmax = 2^(b-1) - 1``) of each weight."""
    qmax = 2 ** (bits - 1) - 1
    scale = channel_max(w) / qmax
    return scale, torch.clamp(torch.round(w / scale), -qmax, qmax)


def uniform(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-channel uniform quantization to ``2^b - 1`` levels."""
    scale, level = uniform_levels(w, bits)
    return level * scale


def pot_exponents(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel scale ``a`` and exponent ``k`` per weight; ``k = -1`` codes zero."""
    kmax = 2 ** (bits - 1) - 2
    scale = channel_max(w)
    mag = w.abs() / scale
    k = torch.round(-torch.log2(mag.clamp(min=torch.finfo(w.dtype).tiny)))
    k = torch.where((mag == 0) | (k > kmax), torch.full_like(k, -1), k.clamp(min=0))
    return scale, k


def pot(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Power-of-two quantization: ``sign(w) * a * 2^-k`` or zero."""
    scale, k = pot_exponents(w, bits)
    return torch.where(k >= 0, torch.sign(w) * scale * torch.exp2(-k), torch.zeros_like(w))


def quantize(w: torch.Tensor, scheme: str, bits: int) -> torch.Tensor:
    """Quantize ``w`` per output channel with ``scheme`` at ``bits`` (``fp32`` returns ``w``)."""
    check_scheme_bits(scheme, bits)
    if scheme == "fp32":
        return w
    return uniform(w, bits) if scheme == "uniform" else pot(w, bits)
