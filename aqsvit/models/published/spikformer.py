"""Spikformer (Zhou et al., "Spikformer: When Spiking Neural Network Meets Transformer", ICLR 2023),
computing exactly what the authors' eval forward computes (ZK-Zhou/spikformer), in its three layouts.

Written here from the paper and from reading the published code, not copied. The parameter names
are the published ones, so a published state_dict loads as it is (:mod:`aqsvit.models.reference_import`).
What differs between the layouts, and from spikingjelly 2.0's own Spikformer:

* the stem (SPS) is four conv3x3 -> BN -> LIF stages and a conv3x3 -> BN -> LIF relative position
  embedding added to its input; a max-pool (3x3, stride 2) follows the LIF of every stage in the
  ``imagenet`` and ``cifar10dvs`` layouts (/16) and of the last two in ``cifar10`` (/4).
  spikingjelly 2.0 pools *before* the LIF, which changes the spikes;
* ``cifar10`` computes Q/K/V, the attention projection and the MLP with biased ``nn.Linear`` layers
  (``*_linear``); ``imagenet`` and ``cifar10dvs`` with 1x1 convs (``*_conv``; Q/K/V without bias,
  the MLP as ``Conv2d`` in ``imagenet`` and ``Conv1d`` in ``cifar10dvs``);
* spiking self-attention ``SSA(Q, K, V) = LIF_0.5(Q K^T V * scale)`` with scale 0.125, but 0.25 in
  ``cifar10dvs``; the attention LIF fires at 0.5, every other LIF at 1.0, all with tau 2 and a
  detached hard reset;
* static images are repeated over T timesteps (T=4); event frames ``[N, T, 2, H, W]`` are the
  timesteps. Head: tokens averaged, then timesteps averaged, then ``nn.Linear``.

The published blocks also hold LayerNorms ``norm1``/``norm2`` (and ``cifar10dvs`` a ``pos_embed``
and ``norm``) that the forward never uses; they are not part of this model and are dropped on import.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from aqsvit.models.protocol import Stage, run_stages
from aqsvit.models.published.configs import Published, register_published
from aqsvit.models.published.layers import STEM_SUFFIXES, add_stem, lif, pointwise, to_sequence

REFERENCE = "ZK-Zhou/spikformer@621268981827af47aa666c1b5f774de4281d90ad"


@dataclass(frozen=True)
class Layout:
    """How one published variant of Spikformer is laid out."""

    name: str
    pooled: tuple[bool, bool, bool, bool]   # stem stages followed by a max-pool (after their LIF)
    token_layer: str                        # "linear" or "conv": Q/K/V, proj and MLP layers
    mlp_conv_dims: int                      # 1 (Conv1d) or 2 (Conv2d) when token_layer is "conv"
    scale: float                            # self-attention scale
    events: bool                            # input is event frames [N, T, C, H, W]
    unused: str                             # regex of published keys the forward never uses


_BLOCK_NORMS = r"block\.\d+\.norm[12]\.(weight|bias)"
LAYOUTS = {
    "cifar10": Layout("cifar10", (False, False, True, True), "linear", 1, 0.125, False, _BLOCK_NORMS),
    "imagenet": Layout("imagenet", (True, True, True, True), "conv", 2, 0.125, False, _BLOCK_NORMS),
    "cifar10dvs": Layout("cifar10dvs", (True, True, True, True), "conv", 1, 0.25, True,
                         _BLOCK_NORMS + r"|pos_embed|norm\.(weight|bias)"),
}


def _token_layer(layout: Layout, c_in: int, c_out: int, bias: bool, mlp: bool = False) -> nn.Module:
    if layout.token_layer == "linear":
        return nn.Linear(c_in, c_out, bias=bias)
    if mlp and layout.mlp_conv_dims == 2:
        return nn.Conv2d(c_in, c_out, kernel_size=1, bias=bias)
    return nn.Conv1d(c_in, c_out, kernel_size=1, bias=bias)


def _norm(layout: Layout, channels: int, mlp: bool = False) -> nn.Module:
    return nn.BatchNorm2d(channels) if mlp and layout.token_layer == "conv" and layout.mlp_conv_dims == 2 \
        else nn.BatchNorm1d(channels)


class SPS(nn.Module):
    """Spiking patch splitting: the conv stem and its relative position embedding."""

    def __init__(self, layout: Layout, in_channels: int, embed_dims: int) -> None:
        super().__init__()
        self.pooled = layout.pooled
        add_stem(self, self.pooled, in_channels, embed_dims)
        self.rpe_lif = lif()

    @staticmethod
    def _conv_bn_lif(conv: nn.Module, bn: nn.Module, node: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """[T, B, C, H, W] -> spikes [T, B, C', H, W]."""
        t, b = x.shape[:2]
        y = bn(conv(x.flatten(0, 1)))
        return node(y.reshape(t, b, *y.shape[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[T, B, C, H, W]`` -> tokens ``[T, B, D, N]``."""
        t, b = x.shape[:2]
        for i, suffix in enumerate(STEM_SUFFIXES):
            x = self._conv_bn_lif(getattr(self, f"proj_conv{suffix}"), getattr(self, f"proj_bn{suffix}"),
                                  getattr(self, f"proj_lif{suffix}"), x)
            if self.pooled[i]:
                y = getattr(self, f"maxpool{suffix}")(x.flatten(0, 1))
                x = y.reshape(t, b, *y.shape[1:])
        x = x + self._conv_bn_lif(self.rpe_conv, self.rpe_bn, self.rpe_lif, x)
        return x.flatten(3)


class SSA(nn.Module):
    """Spiking self-attention: spike-form Q, K, V without softmax, then a LIF at 0.5."""

    def __init__(self, layout: Layout, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dims {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.scale, kind = num_heads, layout.scale, layout.token_layer
        for part in ("q", "k", "v", "proj"):
            setattr(self, f"{part}_{kind}", _token_layer(layout, dim, dim, bias=part == "proj" or kind == "linear"))
            setattr(self, f"{part}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{part}_lif", lif())
            if part == "v":
                self.attn_lif = lif(v_threshold=0.5)
        self._kind = kind

    def _spikes(self, part: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"{part}_lif")(pointwise(getattr(self, f"{part}_{self._kind}"),
                                                      getattr(self, f"{part}_bn"), x))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[T, B, C, N] -> [T, B, heads, N, C / heads]."""
        t, b, c, n = x.shape
        return x.transpose(-1, -2).reshape(t, b, n, self.num_heads, c // self.num_heads).transpose(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._heads(self._spikes(p, x)) for p in "qkv")
        # Q, K, V are spikes: every product and sum is an exact small integer, so the order of the
        # published layouts' matmuls does not change the result; the scale is a power of two.
        y = (q @ k.transpose(-2, -1)) @ v * self.scale
        y = y.transpose(3, 4).reshape(x.shape)
        return self._spikes("proj", self.attn_lif(y))


class MLP(nn.Module):
    """Two token-wise layers, each followed by BN and LIF (``names``: their published prefixes)."""

    def __init__(self, layout: Layout, dim: int, hidden: int, names: tuple[str, str] = ("fc1", "fc2")) -> None:
        super().__init__()
        kind = layout.token_layer
        self._names = names
        for name, (c_in, c_out) in zip(names, ((dim, hidden), (hidden, dim))):
            setattr(self, f"{name}_{kind}", _token_layer(layout, c_in, c_out, bias=True, mlp=True))
            setattr(self, f"{name}_bn", _norm(layout, c_out, mlp=True))
            setattr(self, f"{name}_lif", lif())
        self._kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._names:
            x = getattr(self, f"{name}_lif")(pointwise(getattr(self, f"{name}_{self._kind}"),
                                                       getattr(self, f"{name}_bn"), x))
        return x


class Block(nn.Module):
    """``x + SSA(x)``, then ``x + MLP(x)``."""

    def __init__(self, layout: Layout, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.attn = SSA(layout, dim, num_heads)
        self.mlp = MLP(layout, dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Spikformer(nn.Module):
    """Published Spikformer: images ``[N, C, H, W]`` (or event frames ``[N, T, C, H, W]``) to
    class scores ``[N, classes]``. ``unused_reference_keys`` names the published keys it drops."""

    def __init__(self, layout: str, T: int, in_channels: int, num_classes: int, embed_dims: int,
                 num_heads: int, depths: int, mlp_ratio: float) -> None:
        super().__init__()
        self.layout = LAYOUTS[layout]
        self.T = T
        self.unused_reference_keys = self.layout.unused
        self.patch_embed = SPS(self.layout, in_channels, embed_dims)
        self.block = nn.ModuleList(Block(self.layout, embed_dims, num_heads, mlp_ratio) for _ in range(depths))
        self.head = nn.Linear(embed_dims, num_classes)

    def aqsvit_stages(self) -> list[Stage]:
        """The forward as a chain: input and patch embedding, each block, token average and head."""
        return [Stage(("patch_embed",), lambda x: self.patch_embed(to_sequence(x, self.T, self.layout.events))),
                *(Stage((f"block.{i}",), blk) for i, blk in enumerate(self.block)),
                Stage(("head",), lambda x: self.head(x.mean(3).mean(0)))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.aqsvit_stages(), x)


# the published configurations: CIFAR (cifar10/model.py), ImageNet (imagenet/model.py), event data
# (cifar10dvs/model.py); heads: dim // 32 on CIFAR, dim // 64 on ImageNet, 16 on event data
PUBLISHED = (
    Published("spikformer_cifar10_4_384", "cifar10", "cifar10/model.py", "cifar10",
              "Spikformer-4-384 on CIFAR10 (32x32, T=4), the published cifar10 layout.",
              img_size=32, in_channels=3, num_classes=10, embed_dims=384, num_heads=12, depths=4, steps=4),
    Published("spikformer_cifar10_4_256", "cifar10", "cifar10/model.py", "cifar10",
              "Spikformer-4-256 on CIFAR10 (32x32, T=4), the published cifar10 layout.",
              img_size=32, in_channels=3, num_classes=10, embed_dims=256, num_heads=8, depths=4, steps=4),
    Published("spikformer_cifar10_2_384", "cifar10", "cifar10/model.py", "cifar10",
              "Spikformer-2-384 on CIFAR10 (32x32, T=4), the published cifar10 layout.",
              img_size=32, in_channels=3, num_classes=10, embed_dims=384, num_heads=12, depths=2, steps=4),
    Published("spikformer_cifar100_4_384", "cifar10", "cifar10/model.py", "cifar100",
              "Spikformer-4-384 on CIFAR100 (32x32, T=4), the published cifar10 layout.",
              img_size=32, in_channels=3, num_classes=100, embed_dims=384, num_heads=12, depths=4, steps=4),
    Published("spikformer_cifar100_4_256", "cifar10", "cifar10/model.py", "cifar100",
              "Spikformer-4-256 on CIFAR100 (32x32, T=4), the published cifar10 layout.",
              img_size=32, in_channels=3, num_classes=100, embed_dims=256, num_heads=8, depths=4, steps=4),
    Published("spikformer_cifar100_2_384", "cifar10", "cifar10/model.py", "cifar100",
              "Spikformer-2-384 on CIFAR100 (32x32, T=4), the published cifar10 layout.",
              img_size=32, in_channels=3, num_classes=100, embed_dims=384, num_heads=12, depths=2, steps=4),
    Published("spikformer_imagenet_8_384", "imagenet", "imagenet/model.py", "imagenet",
              "Spikformer-8-384 on ImageNet (224x224, T=4), the published imagenet layout.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=384, num_heads=6, depths=8, steps=4),
    Published("spikformer_imagenet_6_512", "imagenet", "imagenet/model.py", "imagenet",
              "Spikformer-6-512 on ImageNet (224x224, T=4), the published imagenet layout.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=512, num_heads=8, depths=6, steps=4),
    Published("spikformer_imagenet_8_512", "imagenet", "imagenet/model.py", "imagenet",
              "Spikformer-8-512 on ImageNet (224x224, T=4), the published imagenet layout.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=512, num_heads=8, depths=8, steps=4),
    Published("spikformer_imagenet_10_512", "imagenet", "imagenet/model.py", "imagenet",
              "Spikformer-10-512 on ImageNet (224x224, T=4), the published imagenet layout.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=512, num_heads=8, depths=10, steps=4),
    Published("spikformer_imagenet_8_768", "imagenet", "imagenet/model.py", "imagenet",
              "Spikformer-8-768 on ImageNet (224x224, T=4), the published imagenet layout.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=768, num_heads=12, depths=8, steps=4),
    Published("spikformer_cifar10dvs_2_256", "cifar10dvs", "cifar10dvs/model.py", "none",
              "Spikformer-2-256 on cifar10dvs (16 frames x 2 polarities at 128x128), the published cifar10dvs "
              "layout.",
              img_size=128, in_channels=2, num_classes=10, embed_dims=256, num_heads=16, depths=2, steps=16),
    Published("spikformer_dvs128gesture_2_256", "cifar10dvs", "cifar10dvs/model.py", "none",
              "Spikformer-2-256 on dvs128gesture (16 frames x 2 polarities at 128x128), the published "
              "cifar10dvs layout.",
              img_size=128, in_channels=2, num_classes=11, embed_dims=256, num_heads=16, depths=2, steps=16),
)
register_published(PUBLISHED, Spikformer, REFERENCE, LAYOUTS, globals())
