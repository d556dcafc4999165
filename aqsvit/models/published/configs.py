"""The published configurations as tables: one :class:`Published` row per registered model (its
name written out, so ``grep spikformer_cifar10_4_384`` finds it), and :func:`register_published`,
the one helper that makes each row a registered builder whose keyword defaults are the row's."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from aqsvit.models.registry import register_model


@dataclass(frozen=True)
class Published:
    """One published configuration: the registered ``name``, the architecture's ``layout``, the
    reference file (``path`` in the authors' repository), the input ``preprocess`` its weights
    expect, the builder's docstring, and its keyword defaults (``steps`` is ``T``, or ``frames`` for
    a layout on event data)."""

    name: str
    layout: str
    path: str
    preprocess: str
    doc: str
    img_size: int
    in_channels: int
    num_classes: int
    embed_dims: int
    num_heads: int
    depths: int
    steps: int
    mlp_ratio: float = 4.0
    crop_pct: float | None = None


def published_builder(config: Published, architecture: Callable[..., nn.Module], events: bool) -> Callable[..., nn.Module]:
    """The builder of ``config``: ``architecture(layout, T, in_channels, num_classes, embed_dims,
    num_heads, depths, mlp_ratio)`` with the row's values as keyword defaults; ``img_size`` is
    recorded (the data's size) but not passed: the stem and the token average follow the input."""
    c = config

    def build(T: int = c.steps, in_channels: int = c.in_channels, img_size: int = c.img_size,
              num_classes: int = c.num_classes, embed_dims: int = c.embed_dims, num_heads: int = c.num_heads,
              depths: int = c.depths, mlp_ratio: float = c.mlp_ratio) -> nn.Module:
        del img_size
        return architecture(c.layout, T, in_channels, num_classes, embed_dims, num_heads, depths, mlp_ratio)

    def build_events(frames: int = c.steps, in_channels: int = c.in_channels, img_size: int = c.img_size,
                     num_classes: int = c.num_classes, embed_dims: int = c.embed_dims, num_heads: int = c.num_heads,
                     depths: int = c.depths, mlp_ratio: float = c.mlp_ratio) -> nn.Module:
        return build(frames, in_channels, img_size, num_classes, embed_dims, num_heads, depths, mlp_ratio)

    builder = build_events if events else build
    builder.__name__ = builder.__qualname__ = c.name
    builder.__module__ = architecture.__module__
    builder.__doc__ = c.doc
    return builder


def register_published(table: Iterable[Published], architecture: Callable[..., nn.Module], reference: str,
                       layouts: Mapping[str, Any], namespace: MutableMapping[str, Any]) -> None:
    """Register every row of ``table`` (``reference``: ``owner/repo@commit``; ``layouts[row.layout].events``
    says whether it takes event frames) and bind each builder in ``namespace`` under its name (the
    architecture module's globals, so ``spikformer.spikformer_cifar10_4_384`` is the builder)."""
    for config in table:
        builder = published_builder(config, architecture, layouts[config.layout].events)
        register_model(builder, reference=f"{reference} {config.path}", preprocess=config.preprocess,
                       crop_pct=config.crop_pct)
        namespace[config.name] = builder
