"""A model with a fused Q/K/V layer under a plain name, and an MLP layer of the same shape."""
from __future__ import annotations

import torch
from torch import nn


class Mixer(nn.Module):
    aqsvit_input_shape = (1, 8, 8)

    def __init__(self, dim: int = 12) -> None:
        super().__init__()
        self.embed = nn.Linear(8, dim)
        self.mix = nn.Linear(dim, 3 * dim)      # fused Q, K, V: split into three, two meet in a matmul
        self.widen = nn.Linear(dim, 3 * dim)    # same shape, an MLP: not split
        self.narrow = nn.Linear(3 * dim, dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x.flatten(1, 2))
        q, k, v = self.mix(t).chunk(3, dim=-1)
        t = t + (q @ k.transpose(-2, -1)).softmax(-1) @ v
        t = t + self.narrow(self.widen(t).relu())
        return self.head(t.mean(1))


class DeclaredMixer(Mixer):
    """The same model declaring its structure (aqsvit.models.protocol)."""

    def aqsvit_blocks(self) -> list[str]:
        return ["mix", "widen"]

    def aqsvit_fused_qkv(self) -> list[str]:
        return ["widen"]
