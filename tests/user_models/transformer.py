"""A small spiking transformer with separate Q, K, V nn.Linear layers; its blocks live in
``encoder.layer`` (an nn.ModuleList under another name than aqsvit's own models use)."""
from __future__ import annotations

import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.q_lif, self.k_lif, self.v_lif = (neuron.LIFNode(step_mode="s") for _ in range(3))
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        def split(y: torch.Tensor) -> torch.Tensor:
            return y.reshape(n, t, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q_lif(self.query(x))), split(self.k_lif(self.key(x))), split(self.v_lif(self.value(x)))
        attn = (q @ k.transpose(-2, -1)) * 0.25
        return self.out((attn @ v).transpose(1, 2).reshape(n, t, d))


class Layer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attention = Attention(dim, heads)
        self.intermediate = nn.Linear(dim, 2 * dim)
        self.lif = neuron.LIFNode(step_mode="s")
        self.output = nn.Linear(2 * dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(x)
        return self.norm(x + self.output(self.lif(self.intermediate(x))))


class Encoder(nn.Module):
    def __init__(self, dim: int, heads: int, depth: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(dim, heads) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.layer:
            x = block(x)
        return x


class SpikingTransformer(nn.Module):
    """8x8 images as 8 row tokens, T single-step passes averaged (the model loops over time itself)."""

    aqsvit_input_shape = (1, 8, 8)  # the builder's arguments do not say it: the model declares it

    def __init__(self, dim: int, heads: int, depth: int, classes: int, T: int) -> None:
        super().__init__()
        self.T = T
        self.embed = nn.Linear(8, dim)
        self.encoder = Encoder(dim, heads, depth)
        self.classifier = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x.flatten(1, 2))  # [N, 8 rows, dim]
        scores = 0
        for _ in range(self.T):
            scores = scores + self.classifier(self.encoder(tokens).mean(1))
        functional.reset_net(self)
        return scores / self.T


def spiking_transformer(dim: int = 24, heads: int = 2, depth: int = 2, classes: int = 10,
                        T: int = 2) -> SpikingTransformer:
    """Builder of the transformer (input shape declared by the model: aqsvit_input_shape)."""
    return SpikingTransformer(dim, heads, depth, classes, T)
