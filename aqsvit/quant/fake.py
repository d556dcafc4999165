"""Fake quantization for training: weights quantized in the forward pass, straight-through gradients.

The quantized weight is computed from the latent full-precision weight by the very functions the
search and the export use (scales in the target's form re-estimated from the latent weight at every step,
uniform and power-of-two alike), so a fine-tuned model evaluates and exports exactly as trained.
Built on ``torch.nn.utils.parametrize``: removing the parametrization leaves the latent weights.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils import parametrize

from aqsvit.quant.apply import FP32, Assignment, validate_assignment
from aqsvit.hardware import ANY, HardwareTarget, ScaleForm
from aqsvit.quant.layers import quantizable_layers
from aqsvit.quant.quantizers import PER_CHANNEL, quantize


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized tensor, exactly. Backward: the gradient passes to the latent weight."""

    @staticmethod
    def forward(ctx, latent: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
        return quantized

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class FakeQuantWeight(nn.Module):
    """Parametrization of one weight: each block of output rows quantized by its (scheme, bits)."""

    def __init__(self, blocks: list[tuple[int, int, str, int]], scale: ScaleForm = PER_CHANNEL) -> None:
        super().__init__()
        self.blocks = blocks  # (row start, row stop, scheme, bits); rows outside stay FP32
        self.scale = scale  # the target's scale form

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            quantized = latent.clone()
            for start, stop, scheme, bits in self.blocks:
                quantized[start:stop] = quantize(latent[start:stop], scheme, bits, self.scale)
        return _StraightThrough.apply(latent, quantized)


@contextmanager
def fake_quantized(model: nn.Module, assignment: Assignment, split_qkv: bool = True,
                   target: HardwareTarget = ANY) -> Iterator[nn.Module]:
    """Train ``model`` under ``assignment``: its quantized layers' weights are fake-quantized while
    the block runs; afterwards the (updated) latent FP weights are plain parameters again."""
    layers = quantizable_layers(model, split_qkv=split_qkv)
    validate_assignment(assignment, layers, target)
    blocks: dict[str, list[tuple[int, int, str, int]]] = {}
    for layer in layers:
        scheme, bits = assignment.get(layer.name, FP32)
        if scheme != "fp32":
            blocks.setdefault(layer.module_name, []).append((layer.out_start, layer.out_stop, scheme, bits))
    modules = dict(model.named_modules())
    for name, module_blocks in blocks.items():
        parametrize.register_parametrization(modules[name], "weight", FakeQuantWeight(module_blocks, target.scale))
    try:
        yield model
    finally:
        for name in blocks:
            parametrize.remove_parametrizations(modules[name], "weight", leave_parametrized=False)
