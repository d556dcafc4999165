"""What a model may tell aqsvit about itself; every method is optional.

aqsvit finds a model's structure from its module tree (:mod:`aqsvit.quant.structure`). A model
whose structure that cannot see, or that wants to say it outright, implements any of::

    class MyViT(nn.Module):
        aqsvit_input_shape = (3, 32, 32)           # one input without the batch dim: (C, H, W),
                                                   # or (T, C, H, W) for event frames
        def aqsvit_blocks(self) -> list[str]:       # dotted module names of its repeated blocks
            return [f"encoder.layer.{i}" for i in range(len(self.encoder.layer))]
        def aqsvit_fused_qkv(self) -> list[str]:    # Conv/Linear layers whose output rows are Q, K, V
            return [f"encoder.layer.{i}.attn.qkv" for i in range(len(self.encoder.layer))]

``aqsvit_blocks`` drives ``search.granularity=block`` (a layer outside every block is grouped
by the first part of its name: the stem, the head); ``aqsvit_fused_qkv`` names the layers that
``quant.split_qkv`` splits into three equal row blocks ``<name>.q``, ``.k``, ``.v``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class DeclaresBlocks(Protocol):
    def aqsvit_blocks(self) -> Sequence[str]: ...


@runtime_checkable
class DeclaresFusedQKV(Protocol):
    def aqsvit_fused_qkv(self) -> Sequence[str]: ...
