"""A model's structure from its module tree, not from its names: blocks and fused Q/K/V layers.

- Blocks (``search.granularity=block``): the children of the model's main ``nn.ModuleList`` or
  ``nn.Sequential``, the largest by parameter count among those whose children with weights are
  two or more of one class (repeated).
- A fused Q/K/V layer: a Conv/Linear whose output rows divide by three (shape) and whose output,
  split into three, feeds a matrix product with two different thirds (use). The use is seen by
  running one forward pass on zeros under a ``TorchFunctionMode`` that follows which thirds of
  each candidate's output every tensor derives from (a candidate's output starts a fresh trail;
  a module whose inside lost the trail, e.g. a fused neuron kernel, passes its inputs' trail on).

A model may declare either through :mod:`aqsvit.models.protocol`; a declaration wins.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.overrides import TorchFunctionMode

from aqsvit.models.protocol import DeclaresBlocks, DeclaresFusedQKV

QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_CACHE_ATTR = "_aqsvit_structure"
_SPLITS = {torch.chunk, torch.split, torch.unbind, torch.tensor_split, torch.Tensor.chunk, torch.Tensor.split,
           torch.Tensor.unbind, torch.Tensor.tensor_split}
_PRODUCTS = {torch.matmul, torch.bmm, torch.einsum, torch.Tensor.matmul, torch.Tensor.__matmul__,
             torch.Tensor.__rmatmul__, torch.Tensor.bmm, nn.functional.scaled_dot_product_attention}
ALL = frozenset(range(3))


@dataclass(frozen=True)
class Structure:
    """Block names (dotted, in network order) and the names of fused Q/K/V layers."""

    blocks: tuple[str, ...]
    fused_qkv: frozenset[str]

    def block_of(self, module_name: str) -> str:
        """The block ``module_name`` lies in, else the first part of its name (stem, head)."""
        for block in self.blocks:
            if module_name == block or module_name.startswith(block + "."):
                return block
        return module_name.split(".")[0]


def structure(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Structure:
    """The (cached) structure of ``model``; without an input shape (none given, declared or in
    ``model.spec``) no forward pass runs and only declared fused Q/K/V layers are split."""
    cached = getattr(model, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    blocks = tuple(model.aqsvit_blocks()) if isinstance(model, DeclaresBlocks) else main_blocks(model)
    shape = input_shape or getattr(model, "aqsvit_input_shape", None) or _spec_shape(model)
    if isinstance(model, DeclaresFusedQKV):
        fused = frozenset(model.aqsvit_fused_qkv())
    else:
        fused = used_as_qkv(model, tuple(shape)) if shape else frozenset()
    found = Structure(blocks, fused)
    if shape or isinstance(model, DeclaresFusedQKV):  # else a later call with a shape looks again
        object.__setattr__(model, _CACHE_ATTR, found)  # a plain attribute, not a submodule
    return found


def _spec_shape(model: nn.Module) -> tuple[int, ...] | None:
    spec = getattr(model, "spec", None)
    try:
        return tuple(spec.input_shape) if spec is not None else None
    except (KeyError, TypeError, ValueError):
        return None


def main_blocks(model: nn.Module) -> tuple[str, ...]:
    """Children of the largest container (by parameters) whose weighted children repeat one class."""
    best, best_size = (), 0
    for name, module in model.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)):
            continue
        weighted = [(child_name, child) for child_name, child in module.named_children()
                    if any(True for _ in child.parameters())]
        if len(weighted) < 2 or len(Counter(type(child) for _, child in weighted)) != 1:
            continue
        size = sum(p.numel() for p in module.parameters())
        if size > best_size:
            prefix = f"{name}." if name else ""
            best, best_size = tuple(prefix + child_name for child_name, _ in weighted), size
    return best


class _Trail(TorchFunctionMode):
    """Follows, per candidate layer, which thirds of its output each tensor derives from."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[int, dict[str, frozenset[int]]] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique during the pass
        self.used: set[str] = set()

    def tags_of(self, values) -> dict[str, frozenset[int]]:
        merged: dict[str, frozenset[int]] = {}
        stack = list(values)
        while stack:
            value = stack.pop()
            if isinstance(value, (list, tuple)):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, torch.Tensor):
                for layer, parts in self.tags.get(id(value), {}).items():
                    merged[layer] = merged.get(layer, frozenset()) | parts
        return merged

    def mark(self, value, tags: dict[str, frozenset[int]]) -> None:
        if not tags:
            return
        if isinstance(value, (list, tuple)):
            for item in value:
                self.mark(item, tags)
        elif isinstance(value, torch.Tensor):
            own = self.tags.setdefault(id(value), {})
            for layer, parts in tags.items():
                own[layer] = own.get(layer, frozenset()) | parts
            self.alive.append(value)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tags = self.tags_of([args, kwargs])
        if not tags:
            return out
        if func in _PRODUCTS:
            operands = [self.tags_of([a]) for a in args if isinstance(a, torch.Tensor)]
            if len(operands) >= 2:
                for layer in set(operands[0]) & set(operands[1]):
                    a, b = operands[0][layer], operands[1][layer]
                    if len(a) == 1 and len(b) == 1 and a != b:
                        self.used.add(layer)
        if func in _SPLITS and isinstance(out, (list, tuple)) and len(out) == 3:
            for i, piece in enumerate(out):
                self.mark(piece, {k: frozenset({i}) if v == ALL else v for k, v in tags.items()})
            return out
        if func is torch.Tensor.__getitem__ and isinstance(out, torch.Tensor):
            part = _third_index(args[0], args[1])
            if part is not None:
                self.mark(out, {k: frozenset({part}) if v == ALL else v for k, v in tags.items()})
                return out
        self.mark(out, tags)
        return out


def _third_index(tensor: torch.Tensor, index) -> int | None:
    """``i`` when ``tensor[index]`` picks item ``i`` of a dimension of size 3 (``x[1]``, ``x[:, 2]``)."""
    items = index if isinstance(index, tuple) else (index,)
    for dim, item in enumerate(items):
        if isinstance(item, int):
            return item % 3 if dim < tensor.ndim and tensor.shape[dim] == 3 else None
        if not (isinstance(item, slice) and item == slice(None)):
            return None
    return None


@torch.no_grad()
def used_as_qkv(model: nn.Module, input_shape: tuple[int, ...]) -> frozenset[str]:
    """Layers with output rows divisible by 3 whose thirds meet in a matrix product (one forward)."""
    candidates = {name: m for name, m in model.named_modules()
                  if isinstance(m, QUANTIZABLE) and m.weight.shape[0] % 3 == 0}
    if not candidates:
        return frozenset()
    trail = _Trail()
    names = {id(m): n for n, m in candidates.items()}

    def through(module: nn.Module, inputs, output):
        if id(module) in names:  # a candidate's rows start a fresh trail: only its own thirds split
            if isinstance(output, torch.Tensor):
                trail.tags[id(output)] = {names[id(module)]: ALL}
                trail.alive.append(output)
        elif not trail.tags_of([output]):  # a fused kernel inside lost the trail: the module passes it on
            trail.mark(output, trail.tags_of([inputs]))

    handle = nn.modules.module.register_module_forward_hook(through)
    was_training = model.training
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, device=param.device if param is not None else "cpu")
    try:
        model.eval()
        with trail:
            model(x)
    finally:
        handle.remove()
        functional.reset_net(model)
        model.train(was_training)
    return frozenset(trail.used)
