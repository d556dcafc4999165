"""Apply an assignment (layer name -> (scheme, bits)) to a model without losing its FP weights."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from aqsvit.errors import AqsvitError, invalid
from aqsvit.hardware import ANY, HardwareTarget
from aqsvit.quant.layers import QuantLayer, quantizable_layers
from aqsvit.quant.quantizers import check_scheme_bits, quantize

Assignment = Mapping[str, tuple[str, int]]
FP32 = ("fp32", 32)


def uniform_assignment(layers: list[QuantLayer], scheme: str, bits: int) -> dict[str, tuple[str, int]]:
    """The hand-made choice: one scheme and bit width for every layer."""
    return {layer.name: (scheme, bits) for layer in layers}


def validate_assignment(assignment: Assignment, layers: list[QuantLayer], target: HardwareTarget = ANY) -> None:
    """Reject unknown layer names, unsupported schemes or bit widths, and codes ``target`` cannot
    store, with one line."""
    names = {layer.name for layer in layers}
    for name, choice in assignment.items():
        if name not in names:
            raise invalid("assignment layer", name, sorted(names))
        if not (isinstance(choice, (tuple, list)) and len(choice) == 2):
            raise invalid(f"assignment[{name}]", choice, "(scheme, bits) pairs")
        check_scheme_bits(choice[0], choice[1], field=name)
        if not target.holds(*choice):
            raise AqsvitError(f"assignment[{name}]: target {target.name} does not hold {choice[0]} "
                              f"{choice[1]}-bit codes; it holds {target.describe()}")


class LayerQuantizer:
    """Holds a model's full-precision weights once and swaps quantized copies in and out.

    ``with quantizer.applied(assignment): evaluate(model)`` runs the quantized model; the
    FP weights are back in place when the block exits, also on an exception. Layers absent
    from the assignment stay FP32. Applying costs one quantization per touched layer.
    """

    def __init__(self, model: nn.Module, split_qkv: bool = True, target: HardwareTarget = ANY) -> None:
        self.model = model
        self.split_qkv = split_qkv
        self.target = target
        self.layers = quantizable_layers(model, split_qkv=split_qkv)
        modules = dict(model.named_modules())
        self._params: dict[str, nn.Parameter] = {
            layer.module_name: modules[layer.module_name].weight for layer in self.layers}
        self._fp = {name: p.detach().clone() for name, p in self._params.items()}

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def fp_weight(self, layer: QuantLayer) -> torch.Tensor:
        """The full-precision weight block of ``layer``."""
        return self._fp[layer.module_name][layer.out_start:layer.out_stop]

    def quantized_weight(self, layer: QuantLayer, scheme: str, bits: int) -> torch.Tensor:
        return quantize(self.fp_weight(layer), scheme, bits, self.target.scale)

    @contextmanager
    def applied(self, assignment: Assignment) -> Iterator[nn.Module]:
        validate_assignment(assignment, self.layers, self.target)
        touched = set()
        try:
            with torch.no_grad():
                for layer in self.layers:
                    scheme, bits = assignment.get(layer.name, FP32)
                    if scheme == "fp32":
                        continue
                    param = self._params[layer.module_name]
                    param[layer.out_start:layer.out_stop] = self.quantized_weight(layer, scheme, bits)
                    touched.add(layer.module_name)
            yield self.model
        finally:
            with torch.no_grad():
                for name in touched:
                    self._params[name].copy_(self._fp[name])
