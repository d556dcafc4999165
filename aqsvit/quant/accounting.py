"""Exact size accounting of a quantized model (docs/concepts.md, "Memory and energy").

memory = for each quantizable layer: its weights packed at their bit width (bytes rounded up per
layer) + one FP32 scale per output channel when quantized; + FP32 for every other parameter and
floating-point buffer the model needs at inference (BatchNorm, biases, neuron parameters).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from aqsvit.quant.apply import FP32, Assignment
from aqsvit.quant.layers import QuantLayer

SCALE_BITS = 32


@dataclass(frozen=True)
class SizeReport:
    """Memory and compression of one assignment."""

    memory_bytes: int
    fp32_bytes: int
    effective_bits: float

    @property
    def model_compression(self) -> float:
        """FP32 model bytes / quantized model bytes, everything counted."""
        return self.fp32_bytes / self.memory_bytes

    @property
    def weight_compression(self) -> float:
        """32 / effective bits (what the heterogeneous-quantization literature reports)."""
        return 32.0 / self.effective_bits


def inference_state_numel(model: nn.Module) -> int:
    """Numbers the model needs at inference: parameters and floating buffers (not step counters)."""
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    return params + buffers


def layer_bytes(layer: QuantLayer, scheme: str, bits: int) -> int:
    """Packed bytes of one layer: codes at ``bits`` plus FP32 per-channel scales (FP32 if unquantized)."""
    if scheme == "fp32":
        return layer.numel * 4
    return math.ceil(layer.numel * bits / 8) + layer.out_channels * SCALE_BITS // 8


def size_report(model: nn.Module, layers: list[QuantLayer], assignment: Assignment) -> SizeReport:
    """Memory, FP32 size and effective bits of ``assignment`` on ``model``.

    Effective bits average over all quantizable layers weighted by parameter count; a layer the
    assignment leaves at fp32 counts as 32 bits, so compression is never overstated.
    """
    total = inference_state_numel(model)
    quantizable = sum(layer.numel for layer in layers)
    memory = (total - quantizable) * 4
    weighted_bits = 0
    for layer in layers:
        scheme, bits = assignment.get(layer.name, FP32)
        memory += layer_bytes(layer, scheme, bits)
        weighted_bits += layer.numel * (32 if scheme == "fp32" else bits)
    return SizeReport(memory, total * 4, weighted_bits / quantizable)
