"""Building blocks shared by the published spiking transformers: multi-step LIF neurons and
point-wise projections over token tensors.

Every published model here keeps its activations as ``[T, B, C, N]`` (timesteps, batch,
channels, tokens). spikingjelly stays the neuron library: ``lif`` is its ``LIFNode`` in
multi-step mode (the published code's ``MultiStepLIFNode(backend='cupy')`` of spikingjelly
0.0.0.0.12 computes the same charge, fire and hard reset).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from spikingjelly.activation_based import neuron
from torch import nn


def lif(tau: float = 2.0, v_threshold: float = 1.0, detach_reset: bool = True) -> neuron.LIFNode:
    """A multi-step LIF layer (hard reset to 0, input decayed by ``1/tau``) over ``[T, ...]``."""
    return neuron.LIFNode(tau=tau, v_threshold=v_threshold, detach_reset=detach_reset,
                          step_mode="m")


STEM_SUFFIXES = ("", "1", "2", "3")  # the authors' names of the stem's four stages: proj_conv, proj_conv1...


def add_stem(module: nn.Module, pooled: Sequence[bool], in_channels: int, embed_dims: int) -> None:
    """Give ``module`` the spiking patch splitting stem of Spikformer and the Spike-driven
    Transformer, under the authors' names so that their checkpoints load as they are: four
    conv3x3 -> BN -> LIF stages widening ``in_channels`` to ``embed_dims`` (``pooled[i]``: a 3x3,
    stride-2 max pool after stage ``i``), then the relative position embedding's conv3x3 and BN."""
    widths = [in_channels, embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims]
    for i, suffix in enumerate(STEM_SUFFIXES):
        setattr(module, f"proj_conv{suffix}", nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False))
        setattr(module, f"proj_bn{suffix}", nn.BatchNorm2d(widths[i + 1]))
        setattr(module, f"proj_lif{suffix}", lif())
        if pooled[i]:
            setattr(module, f"maxpool{suffix}", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    module.rpe_conv = nn.Conv2d(embed_dims, embed_dims, 3, padding=1, bias=False)
    module.rpe_bn = nn.BatchNorm2d(embed_dims)


def to_sequence(x: torch.Tensor, T: int, events: bool) -> torch.Tensor:
    """The published models' input as ``[T, N, C, H, W]``: images repeated over ``T`` steps, or
    event frames ``[N, T, C, H, W]`` with each frame one step."""
    if not events:
        return x.unsqueeze(0).repeat(T, 1, 1, 1, 1)
    if x.ndim != 5 or x.shape[1] != T:
        raise ValueError(f"expected event frames [N, {T}, C, H, W], got {tuple(x.shape)}")
    return x.transpose(0, 1)


def pointwise(layer: nn.Module, bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``bn(layer(x))`` for every token of ``x`` ``[T, B, C, N]``, returned as ``[T, B, C', N]``.

    ``layer`` is a token-wise ``nn.Linear``, a 1x1 ``nn.Conv1d`` or a 1x1 ``nn.Conv2d`` (the tokens
    then lie along one spatial axis, which a 1x1 kernel and a per-channel BN do not see)."""
    t, b = x.shape[:2]
    flat = x.flatten(0, 1)
    if isinstance(layer, nn.Linear):
        out = layer(flat.transpose(-1, -2)).transpose(-1, -2)
    elif isinstance(layer, nn.Conv2d):
        out = layer(flat.unsqueeze(-1))
    else:
        out = layer(flat)
    out = bn(out)
    return out.reshape(t, b, out.shape[1], -1)
