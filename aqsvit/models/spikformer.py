"""Spiking vision transformers from spikingjelly 2.0's model zoo, registered by size.

These are spikingjelly's own models (no published reference); the published configurations,
computed as their authors' code does, are in :mod:`aqsvit.models.published`.

spikingjelly's ``Spikformer`` returns scores per timestep ``[T, N, classes]``; the wrapper here
averages them over T so that every registered model maps ``[N, C, H, W]`` to ``[N, classes]``.
"""
from __future__ import annotations

import torch
from spikingjelly.activation_based.model import qkformer, spike_driven_transformer
from spikingjelly.activation_based.model.spikformer import Spikformer
from torch import nn

from aqsvit.models.protocol import Stage, run_stages
from aqsvit.models.registry import register_model


class TimeAveragedSpikformer(Spikformer):
    """spikingjelly's Spikformer with its per-timestep scores averaged into ``[N, classes]``;
    its forward is spikingjelly's, as a chain of stages: each convolution of the stem (they hold
    two thirds of the MACs at the benchmark sizes, so a candidate that changes a later one skips
    the earlier ones), its positional encoding with the residual add, each block, the head."""

    def aqsvit_stages(self) -> list[Stage]:
        stem = self.patch_embed
        convs = [Stage((f"patch_embed.stages.{i}",), conv) for i, conv in enumerate(stem.stages)]
        convs[0] = Stage(convs[0].modules, lambda x: stem.stages[0](self._to_sequence(x)))
        # SpikformerPatchStem.forward: positional_encoding(x) + x, the same sum in the same order
        return [*convs, Stage(("patch_embed.positional_encoding",), lambda x: stem.positional_encoding(x) + x),
                *(Stage((f"blocks.{i}",), block) for i, block in enumerate(self.blocks)),
                Stage(("head",), lambda x: self.head(x.flatten(3).mean(dim=-1)).mean(0))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stages(self.aqsvit_stages(), x)


class EventSpikformer(TimeAveragedSpikformer):
    """Spikformer on event frames ``[N, T, 2, H, W]``: each frame is one timestep (as in
    Spikformer's DVS variants), scores averaged over the frames into ``[N, classes]``."""

    def _to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.T:
            raise ValueError(f"expected event frames [N, {self.T}, C, H, W], got {tuple(x.shape)}")
        return x.transpose(0, 1).contiguous()


def _spikformer(
    T: int, in_channels: int, img_size: int, patch_size: int, num_classes: int,
    embed_dims: int, num_heads: int, depths: int, mlp_ratio: float,
    cls: type[Spikformer] = TimeAveragedSpikformer,
) -> nn.Module:
    return cls(
        T=T, in_channels=in_channels, img_size_h=img_size, img_size_w=img_size,
        patch_size=patch_size, num_classes=num_classes, embed_dims=embed_dims,
        num_heads=num_heads, depths=depths, mlp_ratio=mlp_ratio,
    )


@register_model
def spikformer_digits(
    T: int = 4, in_channels: int = 1, img_size: int = 8, patch_size: int = 4,
    num_classes: int = 10, embed_dims: int = 64, num_heads: int = 4, depths: int = 2,
    mlp_ratio: float = 4.0,
) -> nn.Module:
    """The tiny default: 2 blocks of width 64 on 8x8 digits (163k parameters, 14 weight layers)."""
    return _spikformer(T, in_channels, img_size, patch_size, num_classes, embed_dims,
                       num_heads, depths, mlp_ratio)


@register_model
def spikformer_wide(
    T: int = 4, in_channels: int = 1, img_size: int = 16, patch_size: int = 4,
    num_classes: int = 10, embed_dims: int = 96, num_heads: int = 4, depths: int = 6,
    mlp_ratio: float = 4.0,
) -> nn.Module:
    """A bigger benchmark model: 6 blocks of width 96 on 16x16 inputs (16 tokens, 30 weight layers)."""
    return _spikformer(T, in_channels, img_size, patch_size, num_classes, embed_dims,
                       num_heads, depths, mlp_ratio)


@register_model
def spikformer_dvs_digits(
    frames: int = 8, in_channels: int = 2, img_size: int = 16, patch_size: int = 4,
    num_classes: int = 10, embed_dims: int = 64, num_heads: int = 4, depths: int = 2,
    mlp_ratio: float = 4.0,
) -> nn.Module:
    """Event model at test size: 8 frames of 2 polarities at 16x16 (data: digits_events)."""
    return _spikformer(frames, in_channels, img_size, patch_size, num_classes, embed_dims, num_heads, depths,
                       mlp_ratio, cls=EventSpikformer)


@register_model
def spikformer_dvs128(
    frames: int = 16, in_channels: int = 2, img_size: int = 128, patch_size: int = 16,
    num_classes: int = 11, embed_dims: int = 256, num_heads: int = 16, depths: int = 2,
    mlp_ratio: float = 4.0,
) -> nn.Module:
    """Spikformer-2-256 on DVS128 Gesture (16 frames of 2 polarities at 128x128, 11 classes)."""
    return _spikformer(frames, in_channels, img_size, patch_size, num_classes, embed_dims, num_heads, depths,
                       mlp_ratio, cls=EventSpikformer)


@register_model
def qkformer_digits(
    T: int = 4, in_channels: int = 1, img_size: int = 8, num_classes: int = 10,
    embed_dims: int = 64, num_heads: tuple[int, int, int] = (2, 4, 4),
    depths: tuple[int, int, int] = (1, 1, 1), mlp_ratio: float = 4.0,
) -> nn.Module:
    """spikingjelly's QKFormer at digits size (its size follows the input; ``img_size`` is the data's)."""
    return qkformer.QKFormer(T=T, in_channels=in_channels, num_classes=num_classes,
                             embed_dims=embed_dims, num_heads=tuple(num_heads),
                             depths=tuple(depths), mlp_ratio=mlp_ratio)


@register_model
def sdt_digits(
    T: int = 4, in_channels: int = 1, img_size: int = 8, num_classes: int = 10,
    embed_dims: int = 64, num_heads: int = 4, depths: int = 2, mlp_ratio: float = 4.0,
) -> nn.Module:
    """spikingjelly's Spike-driven Transformer at digits size (``img_size`` is the data's)."""
    return spike_driven_transformer.SpikeDrivenTransformer(
        T=T, in_channels=in_channels, num_classes=num_classes, embed_dims=embed_dims,
        num_heads=num_heads, depths=depths, mlp_ratio=mlp_ratio)
