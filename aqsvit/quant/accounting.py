"""Exact size accounting of a quantized model, as a hardware target stores it (docs/concepts.md,
"Memory and energy").

memory = for each quantizable layer: its codes in the target's containers (target ``any``: packed
at their bit width; bytes rounded up per layer) + its scales in the target's form (``any``: one FP32
scale per output channel) when quantized; + FP32 for every other parameter and floating-point
buffer the model needs at inference (BatchNorm, biases, neuron parameters).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from aqsvit.quant.apply import FP32, Assignment
from aqsvit.hardware import ANY, HardwareTarget
from aqsvit.quant.layers import QuantLayer


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


def layer_bytes(layer: QuantLayer, scheme: str, bits: int, target: HardwareTarget = ANY) -> int:
    """Bytes of one layer as ``target`` stores it: codes in their containers plus its scales."""
    return target.layer_bytes(layer.numel, layer.out_channels, scheme, bits)


def size_report(model: nn.Module, layers: list[QuantLayer], assignment: Assignment,
                target: HardwareTarget = ANY) -> SizeReport:
    """Memory, FP32 size and effective bits of ``assignment`` on ``model``, stored on ``target``.

    Effective bits average the stored bits per weight (container widths) over all quantizable
    layers, weighted by parameter count; a layer the assignment leaves at fp32 counts as 32 bits,
    so compression is never overstated.
    """
    total = inference_state_numel(model)
    quantizable = sum(layer.numel for layer in layers)
    memory = (total - quantizable) * 4
    weighted_bits = 0
    for layer in layers:
        scheme, bits = assignment.get(layer.name, FP32)
        memory += layer_bytes(layer, scheme, bits, target)
        weighted_bits += layer.numel * target.stored_bits(scheme, bits)
    return SizeReport(memory, total * 4, weighted_bits / quantizable)
