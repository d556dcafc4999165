"""Find the quantizable layers of any model: every Conv/Linear weight, with stable dotted names.

spikingjelly's Spikformer computes Q, K and V with one fused ``Conv1d(dim, 3*dim)``. With
``split_qkv=True`` that weight becomes three layers (``<module>.q``, ``.k``, ``.v``), each a
block of output channels, so the search can give the three projections different precisions.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class QuantLayer:
    """One quantizable weight tensor, or one block of output channels of it."""

    name: str
    module_name: str
    out_start: int
    out_stop: int
    in_per_out: int  # weights per output channel (fan-in x kernel)

    @property
    def out_channels(self) -> int:
        return self.out_stop - self.out_start

    @property
    def numel(self) -> int:
        return self.out_channels * self.in_per_out

    @property
    def block(self) -> str:
        """The block a layer belongs to (``blocks.<i>`` for transformer blocks, else its first name)."""
        parts = self.name.split(".")
        return ".".join(parts[:2]) if parts[0] in ("blocks", "block", "layers") and len(parts) > 1 else parts[0]


def quantizable_layers(model: nn.Module, split_qkv: bool = True) -> list[QuantLayer]:
    """Every Conv/Linear weight of ``model`` in network (registration) order."""
    layers = []
    for module_name, module in model.named_modules():
        if not isinstance(module, QUANTIZABLE):
            continue
        out = module.weight.shape[0]
        per_out = module.weight[0].numel()
        if split_qkv and "qkv" in module_name and out % 3 == 0:
            third = out // 3
            layers += [QuantLayer(f"{module_name}.{part}", module_name, i * third, (i + 1) * third, per_out)
                       for i, part in enumerate("qkv")]
        else:
            layers.append(QuantLayer(module_name, module_name, 0, out, per_out))
    return layers
