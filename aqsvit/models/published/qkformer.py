"""QKFormer (Zhou et al., "QKFormer: Hierarchical Spiking Transformer using Q-K Attention", NeurIPS
2024), computing exactly what the authors' eval forward computes (zhouchenlin2096/QKFormer), in its
three layouts: ``cifar`` (``cifar10/model.py``; ``cifar100/model.py`` is the same code), ``imagenet``
(``imagenet/qkformer.py``) and ``dvs`` (``cifar10-dvs/model.py``, ``dvs128-gesture/model.py``).

Written here from the paper and from reading the published code, not copied. The parameter names
are the published ones, so a published state_dict loads as it is. What the model computes:

* a hierarchy of stages, each opened by a spiking patch embedding with a deformed shortcut: a chain
  of conv3x3 -> BN [-> MaxPool 3x3/2] -> LIF stages (the pool, where there is one, comes *before* the
  LIF), plus a shortcut conv1x1 (strided as the pools) -> BN -> LIF from an earlier point of the chain,
  added to the chain's output (so stage inputs hold 0, 1 or 2);
* the first stages hold Q-K token-attention blocks: ``Q = LIF(BN(conv(x)))``, ``K`` alike; per head,
  a token's mask is ``LIF_0.5`` of its Q spikes summed over the head's channels, and the output is
  ``LIF(BN(conv(mask * K)))``, linear in the number of tokens;
* the last stage holds Spikformer's spiking self-attention blocks (1x1 Conv1d Q/K/V without bias,
  scale 0.125, the attention LIF at 0.5), :class:`aqsvit.models.published.spikformer.SSA`, except
  that the published code runs the LIF of its output projection over the timesteps and the images
  flattened together (``[T * B, C, N]``, timestep-major): that neuron's membrane carries over from
  one image of the batch to the next, so an image's prediction depends on the batch it is in (its
  size and the other images), as in the authors' evaluation;
* every block is ``x + attn(x)`` then ``x + MLP(x)``, the MLP two 1x1 Conv2d -> BN2d -> LIF;
* all LIFs have tau 2 and a detached hard reset, threshold 1 except the two attention LIFs (0.5);
* static images are repeated over T timesteps, event frames ``[N, T, 2, H, W]`` are the timesteps;
  head: tokens averaged, then timesteps, then ``nn.Linear``.

The stages' widths are ``embed_dims`` / 4, / 2, / 1 (``dvs``: / 2, / 1), ``depths`` counts all blocks:
``cifar`` has one token block in each of its first two stages, ``imagenet`` one and two, ``dvs`` one,
and the last stage holds the rest (none when ``depths`` is smaller, as in the published code). The
published ``cifar`` and ``dvs`` code fixes the heads at 8 and 16 whatever it is given; here
``num_heads`` defaults to those values.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from aqsvit.models.protocol import Stage, run_stages
from aqsvit.models.published.configs import Published, register_published
from aqsvit.models.published.layers import lif, pointwise, to_sequence
from aqsvit.models.published.spikformer import LAYOUTS as SPIKFORMER_LAYOUTS
from aqsvit.models.published.spikformer import MLP, SSA

REFERENCE = "zhouchenlin2096/QKFormer@c2a00e8e54538e76f5954614a60c1d53824bbee9"
_CONV_LAYOUT = SPIKFORMER_LAYOUTS["imagenet"]  # 1x1 convs: Q/K/V without bias, scale 0.125; Conv2d MLP


@dataclass(frozen=True)
class Embed:
    """One spiking patch embedding: ``convs`` are (published prefix, output width as a divisor of the
    stage's width, max-pooled before its LIF); the shortcut starts at the spikes of conv
    ``shortcut_from`` (0: the embedding's input) and is strided by ``shortcut_stride``."""

    convs: tuple[tuple[str, int, bool], ...]
    shortcut_from: int
    shortcut_stride: int


@dataclass(frozen=True)
class Layout:
    """How one published variant of QKFormer is laid out."""

    name: str
    widths: tuple[int, ...]        # each stage's width as a divisor of embed_dims
    embeds: tuple[Embed, ...]      # one per stage
    token_blocks: tuple[int, ...]  # Q-K token-attention blocks of every stage but the last
    ssa_name: str                  # the published name of the last stage's attention
    mlp_names: tuple[str, str]     # the published prefixes of the MLP layers
    events: bool                   # input is event frames [N, T, C, H, W]


_CIFAR_STAGE = Embed((("proj3", 1, False), ("proj4", 1, True)), 0, 2)
_IMAGENET_STAGE = Embed((("proj3", 1, True), ("proj4", 1, False)), 0, 2)
LAYOUTS = {
    "cifar": Layout("cifar", (4, 2, 1), (Embed((("proj", 2, False), ("proj1", 1, False)), 1, 1),
                                         _CIFAR_STAGE, _CIFAR_STAGE),
                    (1, 1), "ssa", ("mlp1", "mlp2"), False),
    "imagenet": Layout("imagenet", (4, 2, 1), (Embed((("proj", 2, True), ("proj1", 1, True), ("proj2", 1, False)), 1, 2),
                                               _IMAGENET_STAGE, _IMAGENET_STAGE),
                       (1, 2), "attn", ("fc1", "fc2"), False),
    "dvs": Layout("dvs", (2, 1), (Embed((("proj", 8, False), ("proj1", 4, True), ("proj2", 2, True), ("proj3", 1, True)),
                                        2, 4),
                                  Embed((("proj", 1, False), ("proj4", 1, True)), 0, 2)),
                  (1,), "ssa", ("mlp1", "mlp2"), True),
}


def _conv_bn_lif(conv: nn.Module, bn: nn.Module, node: nn.Module, x: torch.Tensor,
                 pool: nn.Module | None = None) -> torch.Tensor:
    """``[T, B, C, H, W]`` -> spikes ``LIF(pool(BN(conv(x))))`` ``[T, B, C', H', W']``."""
    t, b = x.shape[:2]
    y = bn(conv(x.flatten(0, 1)))
    if pool is not None:
        y = pool(y)
    return node(y.reshape(t, b, *y.shape[1:]))


class PatchEmbed(nn.Module):
    """Spiking patch embedding with a deformed shortcut (published: PatchEmbedInit, PatchEmbeddingStage)."""

    def __init__(self, spec: Embed, in_channels: int, dim: int) -> None:
        super().__init__()
        self.spec = spec
        widths = [in_channels]
        for prefix, divisor, pooled in spec.convs:
            widths.append(dim // divisor)
            setattr(self, f"{prefix}_conv", nn.Conv2d(widths[-2], widths[-1], 3, padding=1, bias=False))
            setattr(self, f"{prefix}_bn", nn.BatchNorm2d(widths[-1]))
            if pooled:
                setattr(self, f"{prefix}_maxpool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
            setattr(self, f"{prefix}_lif", lif())
        self.proj_res_conv = nn.Conv2d(widths[spec.shortcut_from], dim, 1, stride=spec.shortcut_stride, bias=False)
        self.proj_res_bn = nn.BatchNorm2d(dim)
        self.proj_res_lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` -> ``[T, B, dim, H', W']`` (a sum of two spike maps)."""
        spikes = [x]
        for prefix, _, pooled in self.spec.convs:
            spikes.append(_conv_bn_lif(getattr(self, f"{prefix}_conv"), getattr(self, f"{prefix}_bn"),
                                       getattr(self, f"{prefix}_lif"), spikes[-1],
                                       getattr(self, f"{prefix}_maxpool") if pooled else None))
        shortcut = _conv_bn_lif(self.proj_res_conv, self.proj_res_bn, self.proj_res_lif,
                                spikes[self.spec.shortcut_from])
        return spikes[-1] + shortcut


class QKTokenAttention(nn.Module):
    """Q-K token attention: per head, a binary token mask ``LIF_0.5(sum of Q's channels)`` selects
    the tokens of K, then a projection (published: Token_QK_Attention)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"stage width {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        for part in ("q", "k"):
            setattr(self, f"{part}_conv", nn.Conv1d(dim, dim, kernel_size=1, bias=False))
            setattr(self, f"{part}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{part}_lif", lif())
        self.attn_lif = lif(v_threshold=0.5)
        self.proj_conv = nn.Conv1d(dim, dim, kernel_size=1)
        self.proj_bn = nn.BatchNorm1d(dim)
        self.proj_lif = lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[T, B, C, N]`` -> spikes ``[T, B, C, N]``."""
        t, b, c, n = x.shape
        heads = (t, b, self.num_heads, c // self.num_heads, n)
        q = self.q_lif(pointwise(self.q_conv, self.q_bn, x)).reshape(heads)
        k = self.k_lif(pointwise(self.k_conv, self.k_bn, x)).reshape(heads)
        mask = self.attn_lif(q.sum(3, keepdim=True))  # [T, B, heads, 1, N]
        return self.proj_lif(pointwise(self.proj_conv, self.proj_bn, (mask * k).reshape(t, b, c, n)))


class BatchChainedSSA(SSA):
    """Spikformer's SSA whose output-projection LIF steps through ``[T * B]`` (the published code
    flattens timesteps and images before that LIF): its membrane chains the batch's images."""

    def _spikes(self, part: str, x: torch.Tensor) -> torch.Tensor:
        if part != "proj":
            return super()._spikes(part, x)
        y = pointwise(self.proj_conv, self.proj_bn, x)
        return self.proj_lif(y.flatten(0, 1)).reshape(y.shape)


class Block(nn.Module):
    """``x + attn(x)``, then ``x + MLP(x)``; the attention under its published name."""

    def __init__(self, attn_name: str, attn: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self._attn_name = attn_name
        setattr(self, attn_name, attn)
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + getattr(self, self._attn_name)(x)
        return x + self.mlp(x)


class QKFormer(nn.Module):
    """Published QKFormer: images ``[N, C, H, W]`` (or event frames ``[N, T, C, H, W]``) to class
    scores ``[N, classes]``; its blocks, stage by stage, are :meth:`aqsvit_blocks`."""

    def __init__(self, layout: str, T: int, in_channels: int, num_classes: int, embed_dims: int,
                 num_heads: int, depths: int, mlp_ratio: float) -> None:
        super().__init__()
        self.layout = LAYOUTS[layout]
        self.T = T
        last = max(depths - sum(self.layout.token_blocks), 0)
        c_in = in_channels
        for i, (divisor, embed) in enumerate(zip(self.layout.widths, self.layout.embeds), start=1):
            dim = embed_dims // divisor
            token = i <= len(self.layout.token_blocks)
            count = self.layout.token_blocks[i - 1] if token else last
            setattr(self, f"patch_embed{i}", PatchEmbed(embed, c_in, dim))
            setattr(self, f"stage{i}", nn.ModuleList(
                Block("tssa" if token else self.layout.ssa_name,
                      QKTokenAttention(dim, num_heads) if token else BatchChainedSSA(_CONV_LAYOUT, dim, num_heads),
                      MLP(_CONV_LAYOUT, dim, int(dim * mlp_ratio), names=self.layout.mlp_names))
                for _ in range(count)))
            c_in = dim
        self.stages = len(self.layout.widths)
        self.head = nn.Linear(embed_dims, num_classes)

    def aqsvit_blocks(self) -> list[str]:
        """Every attention block of every stage (the patch embeddings group by their own names)."""
        return [f"stage{i}.{j}" for i in range(1, self.stages + 1) for j in range(len(getattr(self, f"stage{i}")))]

    def aqsvit_stages(self) -> list[Stage]:
        """The forward as a chain: input and the first patch embedding, each block (on the tokens
        of its stage's ``[T, N, C, H, W]`` map), each later patch embedding, token average and head."""
        chain = [Stage(("patch_embed1",), lambda x: self.patch_embed1(to_sequence(x, self.T, self.layout.events)))]
        for i in range(1, self.stages + 1):
            if i > 1:
                chain.append(Stage((f"patch_embed{i}",), getattr(self, f"patch_embed{i}")))
            chain += [Stage((f"stage{i}.{j}",), _on_tokens(blk)) for j, blk in enumerate(getattr(self, f"stage{i}"))]
        chain.append(Stage(("head",), lambda x: self.head(x.flatten(3).mean(3).mean(0))))
        return chain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.aqsvit_stages(), x)


def _on_tokens(block: nn.Module):
    """``block`` (on tokens ``[T, N, C, L]``) applied to a map ``[T, N, C, H, W]``, keeping its shape."""
    return lambda x: block(x.flatten(3)).reshape(x.shape)


# CIFAR-100's published config (cifar100/cifar100.yml) normalises with the CIFAR-10 mean and std.
# ImageNet evaluation (imagenet/util/datasets.py): bicubic resize to size / 0.875, centre crop, at 224
# (above 224 the published evaluation crops at 1.0: dataset.kwargs.crop_pct=1.0).
PUBLISHED = (
    Published("qkformer_cifar10_4_384", "cifar", "cifar10/model.py", "cifar10",
              "QKFormer HST-4-384 on CIFAR10 (32x32, T=4), the published cifar layout.",
              img_size=32, in_channels=3, num_classes=10, embed_dims=384, num_heads=8, depths=4, steps=4),
    Published("qkformer_cifar100_4_384", "cifar", "cifar100/model.py", "cifar10",
              "QKFormer HST-4-384 on CIFAR100 (32x32, T=4), the published cifar layout.",
              img_size=32, in_channels=3, num_classes=100, embed_dims=384, num_heads=8, depths=4, steps=4),
    Published("qkformer_imagenet_10_384", "imagenet", "imagenet/qkformer.py", "imagenet",
              "QKFormer HST-10-384 on ImageNet (224x224, T=4), the published imagenet layout.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=384, num_heads=6, depths=10, steps=4,
              crop_pct=0.875),
    Published("qkformer_imagenet_10_512", "imagenet", "imagenet/qkformer.py", "imagenet",
              "QKFormer HST-10-512 on ImageNet (224x224, T=4), the published imagenet layout.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=512, num_heads=8, depths=10, steps=4,
              crop_pct=0.875),
    Published("qkformer_imagenet_10_768", "imagenet", "imagenet/qkformer.py", "imagenet",
              "QKFormer HST-10-768 on ImageNet (224x224, T=4), the published imagenet layout.",
              img_size=224, in_channels=3, num_classes=1000, embed_dims=768, num_heads=12, depths=10, steps=4,
              crop_pct=0.875),
    Published("qkformer_cifar10dvs_2_256", "dvs", "cifar10-dvs/model.py", "none",
              "QKFormer HST-2-256 on cifar10dvs (16 frames x 2 polarities at 128x128), the published dvs layout.",
              img_size=128, in_channels=2, num_classes=10, embed_dims=256, num_heads=16, depths=2, steps=16,
              mlp_ratio=1.0),
    Published("qkformer_dvs128gesture_2_256", "dvs", "dvs128-gesture/model.py", "none",
              "QKFormer HST-2-256 on dvs128gesture (16 frames x 2 polarities at 128x128), the published dvs layout.",
              img_size=128, in_channels=2, num_classes=11, embed_dims=256, num_heads=16, depths=2, steps=16),
)
register_published(PUBLISHED, QKFormer, REFERENCE, LAYOUTS, globals())
