"""Energy estimate of a quantized SNN (docs/concepts.md, "Memory and energy").

A weight layer whose input is spikes (non-negative integers: binary spikes, or sums of spikes after
a residual add) does accumulates only: ``ACs = MACs x mean input``, i.e. the synaptic operations
(firing rate x fan-out x T). A layer whose input is not spikes (the first, image-fed layer; the head
fed by averaged features) does ``MACs``. Both counts include the T timesteps and are measured on
calibration data with the full-precision model. Each operation costs the energy of its bit width
and scheme at 45 nm (Horowitz, "Computing's energy problem", ISSCC 2014):

| operation        | 8-bit int | 32-bit int | 32-bit float |
|------------------|-----------|------------|--------------|
| add              | 0.03 pJ   | 0.1 pJ     | 0.9 pJ       |
| multiply         | 0.2 pJ    | 3.1 pJ     | 3.7 pJ       |

Integer adds scale linearly in width (0.03 pJ x b/8 below 8 bits, interpolated above), multiplies
quadratically (0.2 pJ x (b/8)^2). A power-of-two weight turns the multiply into a shift, costed as
one add of the same width. So: FP32 AC = 0.9 pJ, FP32 MAC = 4.6 pJ; uniform b-bit MAC =
mult(b) + add(b); PoT b-bit MAC = 2 x add(b); any b-bit AC = add(b). Only weight layers are
counted (BatchNorm folds into thresholds; neuron updates are the same for every assignment).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from spikingjelly.activation_based import functional
from torch import nn

from aqsvit.quant.apply import FP32, Assignment
from aqsvit.quant.layers import QuantLayer

E_ADD_INT8, E_ADD_INT32, E_ADD_FP32 = 0.03, 0.1, 0.9
E_MULT_INT8, E_MULT_FP32 = 0.2, 3.7


def add_energy(bits: int) -> float:
    """pJ of one integer add of ``bits`` width."""
    if bits <= 8:
        return E_ADD_INT8 * bits / 8
    return E_ADD_INT8 + (bits - 8) * (E_ADD_INT32 - E_ADD_INT8) / 24


def op_energy(scheme: str, bits: int, spiking: bool) -> float:
    """pJ of one synaptic operation: an accumulate if the input spikes, else a multiply-accumulate."""
    if scheme == "fp32":
        return E_ADD_FP32 if spiking else E_ADD_FP32 + E_MULT_FP32
    if spiking:
        return add_energy(bits)
    multiply = add_energy(bits) if scheme == "pot" else E_MULT_INT8 * (bits / 8) ** 2
    return multiply + add_energy(bits)


@dataclass(frozen=True)
class LayerActivity:
    """Per-image operation count of one weight layer, measured on calibration data."""

    macs: float      # dense multiply-accumulates per image, T included
    rate: float      # mean input value (firing rate for binary spikes)
    spiking: bool    # input is spikes: accumulates only

    @property
    def ops(self) -> float:
        return self.macs * self.rate if self.spiking else self.macs


@torch.no_grad()
def measure_activity(model: nn.Module, layers: list[QuantLayer],
                     batches: Iterable[torch.Tensor]) -> dict[str, LayerActivity]:
    """Count each layer's operations per image on ``batches`` of images."""
    modules = dict(model.named_modules())
    stats: dict[str, list[float]] = {}
    handles = []

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            x = inputs[0]
            s = stats.setdefault(name, [0.0, 0.0, 0.0, 1.0])
            s[0] += output.numel() * module.weight[0].numel()
            s[1] += float(x.sum())
            s[2] += x.numel()
            s[3] = min(s[3], float(bool(((x >= 0) & (x == x.round())).all())))
        return record

    for name in {layer.module_name for layer in layers}:
        handles.append(modules[name].register_forward_hook(hook(name)))
    images = 0
    try:
        for x in batches:
            model(x)
            functional.reset_net(model)
            images += len(x)
    finally:
        for handle in handles:
            handle.remove()
    result = {}
    for layer in layers:
        macs, total, count, spiking = stats[layer.module_name]
        share = layer.out_channels / modules[layer.module_name].weight.shape[0]
        result[layer.name] = LayerActivity(macs * share / images, total / count, bool(spiking))
    return result


def energy_pj(activity: dict[str, LayerActivity], assignment: Assignment) -> float:
    """Estimated energy per image, in picojoules."""
    total = 0.0
    for name, act in activity.items():
        scheme, bits = assignment.get(name, FP32)
        total += act.ops * op_energy(scheme, bits, act.spiking)
    return total
