"""Spike-driven Transformer (Yao et al., "Spike-driven Transformer", NeurIPS 2023), computing exactly
what the authors' eval forward computes (BICLab/Spike-Driven-Transformer, ``model/spikeformer.py`` with
``module/sps.py`` and ``module/ms_conv.py``, ``spike_mode=lif``).

Written here from the paper and from reading the published code, not copied. The parameter names are
the published ones, so a published state_dict loads as it is (:mod:`aqsvit.models.reference_import`).
What sets it apart from Spikformer (:mod:`aqsvit.models.published.spikformer`):

* activations stay ``[T, B, C, H, W]`` and every token-wise layer is a 1x1 ``Conv2d`` + ``BatchNorm2d``;
* membrane shortcuts: the residual stream carries real values (membrane inputs), and every branch
  starts with its own LIF (``shortcut_lif`` in attention, ``fc1_lif`` / ``fc2_lif`` in the MLP), so the
  branch layers see spikes while the sums stay before the neurons;
* the stem (MS_SPS) is four conv3x3 -> BN stages with a LIF; the first three pool (max 3x3, stride 2,
  where ``pooling_stat`` says) after their LIF, the last pools its BN output *before* its LIF, and that
  pooled membrane input is the residual stream's start: ``x0 = pool(BN(conv(s))) + BN(rpe_conv(LIF(.)))``
  with no LIF after the relative position embedding;
* spike-driven self-attention (SDSA): ``Q, K, V = LIF(BN(conv(LIF(x))))`` per head ``[T, B, h, N, d]``,
  ``SDSA = Q * LIF_0.5(sum_N (K * V))`` (a per-channel mask, no matrix product, no scale), then
  ``proj_conv`` (biased) -> BN, added to ``x``. The published ``talking_heads`` Conv1d is built but never
  used by the forward; it is dropped on import;
* the CIFAR10-DVS configuration (``dvs_mode``) "erodes" K, V, K*V and the attention output with a
  3x3 stride-1 max-pool over the last two axes of each ``[.., ., X, Y]`` tensor (so over the spatial
  axes of K and V, but over tokens x channels-per-head of K*V and Q*KV), as the published code does;
* head: tokens averaged, a LIF over the ``T`` averaged features, ``nn.Linear``, then the mean over T.

All LIFs have tau 2 and a detached hard reset to 0; they fire at 1.0 except the SDSA one at 0.5.
Static images are repeated over T timesteps; event frames ``[N, T, C, H, W]`` are the timesteps.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from aqsvit.models.protocol import Stage, run_stages
from aqsvit.models.published.configs import Published, register_published
from aqsvit.models.published.layers import STEM_SUFFIXES, add_stem, lif, to_sequence

REFERENCE = "BICLab/Spike-Driven-Transformer@3faa82272eb499e4d56ea77707d4536e7c69a54b"
PATH = "model/spikeformer.py"


@dataclass(frozen=True)
class Layout:
    """How one published configuration family is laid out."""

    name: str
    pooled: tuple[bool, bool, bool, bool]  # the published pooling_stat: stem stages followed by a max-pool
    erode: bool                            # the published dvs_mode (CIFAR10-DVS): 3x3 max "erosion" in SDSA
    events: bool                           # input is event frames [N, T, C, H, W]


LAYOUTS = {
    "cifar": Layout("cifar", (False, False, True, True), False, False),          # pooling_stat "0011"
    "imagenet": Layout("imagenet", (True, True, True, True), False, False),      # "1111"
    "cifar10dvs": Layout("cifar10dvs", (False, False, True, True), True, True),  # "0011", dvs_mode
    "gesture": Layout("gesture", (False, True, True, True), False, True),        # "0111"
}


def per_step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn`` over the timesteps and batch of ``x`` ``[T, B, ...]`` at once, as ``[T, B, ...]``."""
    t, b = x.shape[:2]
    y = fn(x.flatten(0, 1))
    return y.reshape(t, b, *y.shape[1:])


def conv_bn(conv: nn.Module, bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` for ``x`` ``[T, B, C, H, W]``."""
    return per_step(lambda y: bn(conv(y)), x)


class SPS(nn.Module):
    """The stem (published MS_SPS): four conv3x3 -> BN stages and a relative position embedding;
    returns the membrane inputs ``[T, B, D, H', W']`` that start the residual stream."""

    def __init__(self, layout: Layout, in_channels: int, embed_dims: int) -> None:
        super().__init__()
        self.pooled = layout.pooled
        add_stem(self, self.pooled, in_channels, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[T, B, C, H, W]`` -> membrane inputs ``[T, B, D, H', W']``."""
        for i, suffix in enumerate(STEM_SUFFIXES):
            x = conv_bn(getattr(self, f"proj_conv{suffix}"), getattr(self, f"proj_bn{suffix}"), x)
            node = getattr(self, f"proj_lif{suffix}")
            pool = getattr(self, f"maxpool{suffix}") if self.pooled[i] else None
            if i < 3:  # LIF, then pool the spikes
                x = node(x)
                if pool is not None:
                    x = per_step(pool, x)
            else:  # the last stage pools its membrane input, which the embedding is added to
                feat = per_step(pool, x) if pool is not None else x
                x = node(feat)
        return conv_bn(self.rpe_conv, self.rpe_bn, x) + feat


class SDSA(nn.Module):
    """Spike-driven self-attention with its membrane shortcut (published MS_SSA_Conv):
    ``x + BN(proj(SDSA(LIF(x))))``."""

    def __init__(self, dim: int, num_heads: int, erode: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dims {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.shortcut_lif = lif()
        for part in "qkv":
            setattr(self, f"{part}_conv", nn.Conv2d(dim, dim, kernel_size=1, bias=False))
            setattr(self, f"{part}_bn", nn.BatchNorm2d(dim))
            setattr(self, f"{part}_lif", lif())
        self.talking_heads_lif = lif(v_threshold=0.5)  # the published name of SDSA's neuron
        self.proj_conv = nn.Conv2d(dim, dim, kernel_size=1)
        self.proj_bn = nn.BatchNorm2d(dim)
        self.erode = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=1, padding=(0, 1, 1)) if erode else None

    def _eroded(self, x: torch.Tensor) -> torch.Tensor:
        return self.erode(x) if self.erode is not None else x

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[T, B, C, H, W] -> [T, B, heads, N, C / heads]."""
        t, b, c = x.shape[:3]
        return x.flatten(3).transpose(-1, -2).reshape(t, b, -1, self.num_heads, c // self.num_heads).transpose(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes = self.shortcut_lif(x)
        q, k, v = (getattr(self, f"{p}_lif")(conv_bn(getattr(self, f"{p}_conv"), getattr(self, f"{p}_bn"), spikes))
                   for p in "qkv")
        q, k, v = self._heads(q), self._heads(self._eroded(k)), self._heads(self._eroded(v))
        kv = self.talking_heads_lif(self._eroded(k * v).sum(dim=-2, keepdim=True))
        y = self._eroded(q * kv).transpose(3, 4).reshape(x.shape)
        return conv_bn(self.proj_conv, self.proj_bn, y) + x


class MLP(nn.Module):
    """Two 1x1 conv -> BN layers, each on the spikes of its own LIF, with the membrane shortcut
    (published MS_MLP_Conv), and a second one around the first layer where its width equals the input's."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.res = dim == hidden
        for name, (c_in, c_out) in (("fc1", (dim, hidden)), ("fc2", (hidden, dim))):
            setattr(self, f"{name}_lif", lif())
            setattr(self, f"{name}_conv", nn.Conv2d(c_in, c_out, kernel_size=1))
            setattr(self, f"{name}_bn", nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = conv_bn(self.fc1_conv, self.fc1_bn, self.fc1_lif(x))
        if self.res:
            x = y = x + y
        return conv_bn(self.fc2_conv, self.fc2_bn, self.fc2_lif(y)) + x


class Block(nn.Module):
    """Attention, then MLP, each with its membrane shortcut inside (published MS_Block_Conv)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, erode: bool) -> None:
        super().__init__()
        self.attn = SDSA(dim, num_heads, erode)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.attn(x))


class SpikeDrivenTransformer(nn.Module):
    """Published Spike-driven Transformer: images ``[N, C, H, W]`` (or event frames ``[N, T, C, H, W]``)
    to class scores ``[N, classes]``. ``unused_reference_keys`` names the published keys it drops."""

    unused_reference_keys = r"block\.\d+\.attn\.talking_heads\.weight"

    def __init__(self, layout: str, T: int, in_channels: int, num_classes: int, embed_dims: int,
                 num_heads: int, depths: int, mlp_ratio: float) -> None:
        super().__init__()
        self.layout = LAYOUTS[layout]
        self.T = T
        self.patch_embed = SPS(self.layout, in_channels, embed_dims)
        self.block = nn.ModuleList(Block(embed_dims, num_heads, mlp_ratio, self.layout.erode)
                                   for _ in range(depths))
        self.head_lif = lif()
        self.head = nn.Linear(embed_dims, num_classes)

    def aqsvit_stages(self) -> list[Stage]:
        """The forward as a chain: input and patch embedding, each block, token average and head."""
        return [Stage(("patch_embed",), lambda x: self.patch_embed(to_sequence(x, self.T, self.layout.events))),
                *(Stage((f"block.{i}",), blk) for i, blk in enumerate(self.block)),
                Stage(("head_lif", "head"), lambda x: self.head(self.head_lif(x.flatten(3).mean(3))).mean(0))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.aqsvit_stages(), x)


# the published configurations (conf/<data>/<depth>_<dim>_*.yml): 8 heads everywhere, MLP ratio 4;
# ImageNet evaluated at crop 0.95
PUBLISHED = (
    Published("sdt_cifar10_2_256", "cifar", "model/spikeformer.py", "cifar10",
              "Spike-driven Transformer-2-256 on CIFAR10 (32x32, T=4), pooling_stat 0011.",
              img_size=32, in_channels=3, num_classes=10, embed_dims=256, num_heads=8, depths=2, steps=4),
    Published("sdt_cifar10_2_512", "cifar", "model/spikeformer.py", "cifar10",
              "Spike-driven Transformer-2-512 on CIFAR10 (32x32, T=4), pooling_stat 0011.",
              img_size=32, in_channels=3, num_classes=10, embed_dims=512, num_heads=8, depths=2, steps=4),
    Published("sdt_cifar100_2_256", "cifar", "model/spikeformer.py", "cifar100",
              "Spike-driven Transformer-2-256 on CIFAR100 (32x32, T=4), pooling_stat 0011.",
              img_size=32, in_channels=3, num_classes=100, embed_dims=256, num_heads=8, depths=2, steps=4),
    Published("sdt_cifar100_2_512", "cifar", "model/spikeformer.py", "cifar100",
              "Spike-driven Transformer-2-512 on CIFAR100 (32x32, T=4), pooling_stat 0011.",
              img_size=32, in_channels=3, num_classes=100, embed_dims=512, num_heads=8, depths=2, steps=4),
    Published("sdt_imagenet_8_384", "imagenet", "model/spikeformer.py", "imagenet",
              "Spike-driven Transformer-8-384 on ImageNet (224x224, T=4, evaluated at crop 0.95), pooling_stat 1111.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=384, num_heads=8, depths=8, steps=4,
              crop_pct=0.95),
    Published("sdt_imagenet_6_512", "imagenet", "model/spikeformer.py", "imagenet",
              "Spike-driven Transformer-6-512 on ImageNet (224x224, T=4, evaluated at crop 0.95), pooling_stat 1111.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=512, num_heads=8, depths=6, steps=4,
              crop_pct=0.95),
    Published("sdt_imagenet_8_512", "imagenet", "model/spikeformer.py", "imagenet",
              "Spike-driven Transformer-8-512 on ImageNet (224x224, T=4, evaluated at crop 0.95), pooling_stat 1111.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=512, num_heads=8, depths=8, steps=4,
              crop_pct=0.95),
    Published("sdt_imagenet_10_512", "imagenet", "model/spikeformer.py", "imagenet",
              "Spike-driven Transformer-10-512 on ImageNet (224x224, T=4, evaluated at crop 0.95), "
              "pooling_stat 1111.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=512, num_heads=8, depths=10, steps=4,
              crop_pct=0.95),
    Published("sdt_imagenet_8_768", "imagenet", "model/spikeformer.py", "imagenet",
              "Spike-driven Transformer-8-768 on ImageNet (224x224, T=4, evaluated at crop 0.95), pooling_stat 1111.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=768, num_heads=8, depths=8, steps=4,
              crop_pct=0.95),
    Published("sdt_cifar10dvs_2_256", "cifar10dvs", "model/spikeformer.py", "none",
              "Spike-driven Transformer-2-256 on CIFAR10-DVS (10 frames x 2 polarities at 64x64), "
              "pooling_stat 0011, dvs_mode (eroded SDSA).",
              img_size=64, in_channels=2, num_classes=10, embed_dims=256, num_heads=8, depths=2, steps=10),
    Published("sdt_dvs128gesture_2_256", "gesture", "model/spikeformer.py", "none",
              "Spike-driven Transformer-2-256 on DVS128 Gesture (16 frames x 2 polarities at 128x128; the "
              "10-frame config is frames=10), pooling_stat 0111.",
              img_size=128, in_channels=2, num_classes=11, embed_dims=256, num_heads=8, depths=2, steps=16),
    # not a published configuration: the published cifar layout reduced to the shipped digits, a benchmark
    # model beside spikformer_digits and spikformer_wide (4 blocks of width 64, 4x4 tokens after the stem)
    Published("sdt_digits16", "cifar", "model/spikeformer.py", "none",
              "Spike-driven Transformer-4-64, the published cifar layout (pooling_stat 0011) reduced to the "
              "shipped digits at 16x16 (1 channel, T=4): 265k parameters, 30 weight layers.",
              img_size=16, in_channels=1, num_classes=10, embed_dims=64, num_heads=8, depths=4, steps=4),
)
register_published(PUBLISHED, SpikeDrivenTransformer, REFERENCE, LAYOUTS, globals())
