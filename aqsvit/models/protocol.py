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
        def aqsvit_stages(self) -> list[Stage]:     # its forward as a chain of stages (see below)
            return [Stage(("embed",), self.embed),
                    *(Stage((f"encoder.layer.{i}",), blk) for i, blk in enumerate(self.encoder.layer)),
                    Stage(("head",), lambda x: self.head(x.mean(1)))]

``aqsvit_blocks`` drives ``search.granularity=block`` (a layer outside every block is grouped
by the first part of its name: the stem, the head); ``aqsvit_fused_qkv`` names the layers that
``quant.split_qkv`` splits into three equal row blocks ``<name>.q``, ``.k``, ``.v``.

``aqsvit_stages`` lets the search evaluate a candidate from the first stage it changes: the input
of that stage, computed once for the layers before it, is reused by every candidate that shares
them (:mod:`aqsvit.search.stage_cache`). The contract: ``model(x)`` equals
``run_stages(model.aqsvit_stages(), x)`` bit for bit (simplest: let ``forward`` call
``run_stages``), every quantizable layer and spiking neuron lies in the modules of exactly one
stage and runs only there (no weight shared with another stage), and no stage modifies its input
in place (a cached input is fed to many candidates). Without it every
candidate runs the whole forward.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class Stage:
    """One link of a model's forward: ``forward`` maps the previous stage's output to the next
    one's input; ``modules`` are the dotted names of the submodules holding its layers."""

    modules: tuple[str, ...]  # ("",): the whole model
    forward: Callable[[torch.Tensor], torch.Tensor]

    def holds(self, layer: str) -> bool:
        """Whether the layer (or module) named ``layer`` belongs to this stage."""
        return any(m == "" or layer == m or layer.startswith(m + ".") for m in self.modules)


def run_stages(stages: Sequence[Stage], x: torch.Tensor) -> torch.Tensor:
    """The model's output: ``x`` through every stage in order."""
    for stage in stages:
        x = stage.forward(x)
    return x


@runtime_checkable
class DeclaresBlocks(Protocol):
    def aqsvit_blocks(self) -> Sequence[str]: ...


@runtime_checkable
class DeclaresFusedQKV(Protocol):
    def aqsvit_fused_qkv(self) -> Sequence[str]: ...


@runtime_checkable
class DeclaresStages(Protocol):
    def aqsvit_stages(self) -> Sequence[Stage]: ...
