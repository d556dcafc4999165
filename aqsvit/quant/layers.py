"""Find the quantizable layers of any model: every Conv/Linear weight, with stable dotted names.

spikingjelly's Spikformer computes Q, K and V with one fused ``Conv1d(dim, 3*dim)``. With
``split_qkv=True`` such a weight (found by shape and use, :mod:`aqsvit.quant.structure`) becomes
three layers (``<module>.q``, ``.k``, ``.v``), each a block of output channels, so the search can
give the three projections different precisions.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from aqsvit.quant.structure import QUANTIZABLE, structure


@dataclass(frozen=True)
class QuantLayer:
    """One quantizable weight tensor, or one block of output channels of it."""

    name: str
    module_name: str
    out_start: int
    out_stop: int
    in_per_out: int  # weights per output channel (fan-in x kernel)
    block: str = ""  # the model block it lies in (the stem or head: the first part of its name)

    @property
    def out_channels(self) -> int:
        return self.out_stop - self.out_start

    @property
    def numel(self) -> int:
        return self.out_channels * self.in_per_out


def quantizable_layers(model: nn.Module, split_qkv: bool = True) -> list[QuantLayer]:
    """Every Conv/Linear weight of ``model`` in network (registration) order."""
    found = structure(model)
    layers = []
    for module_name, module in model.named_modules():
        if not isinstance(module, QUANTIZABLE):
            continue
        out = module.weight.shape[0]
        per_out = module.weight[0].numel()
        block = found.block_of(module_name)
        if split_qkv and module_name in found.fused_qkv and out % 3 == 0:
            third = out // 3
            layers += [QuantLayer(f"{module_name}.{part}", module_name, i * third, (i + 1) * third, per_out, block)
                       for i, part in enumerate("qkv")]
        else:
            layers.append(QuantLayer(module_name, module_name, 0, out, per_out, block))
    return layers
