"""Evaluate a candidate from the first stage it changes, and count what every forward costs.

A model that declares its stages (:meth:`aqsvit_stages`, :mod:`aqsvit.models.protocol`) computes
the input of stage ``s`` from the layers of the stages before ``s`` only. So that input, for one
batch of the evaluation split, computed once, serves every candidate with the same choices for
those layers: a greedy step's candidates each change one unit of the step's base, and the base's
stage inputs were stored while the base itself was evaluated (one set per beam entry alike).

Entries are keyed by (stage, the choices of every layer before it, the batch's image range) and
hold the tensor the full forward computes there, so a candidate's logits equal its full forward's
bit for bit. They live on the evaluation device within ``budget_bytes``, least recently used out
first; a candidate whose entries were dropped runs from an earlier stage, never wrongly.

Every forward is counted in multiply-accumulates (convolutions and matrix products, from torch's
``FlopCounterMode`` on one batch, per image and stage), so a search's cost reads as full
evaluations: MACs spent / MACs of one FP forward over the whole split.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aqsvit.errors import AqsvitError
from aqsvit.models.protocol import DeclaresStages, Stage
from aqsvit.proxy.capture import lif_layers
from aqsvit.quant.apply import FP32


def model_stages(model: nn.Module) -> list[Stage]:
    """The model's declared stages, or the whole forward as one stage."""
    if isinstance(model, DeclaresStages):
        return list(model.aqsvit_stages())
    return [Stage(("",), model)]


class StageCache:
    """Stage inputs of evaluated candidates, shared by the candidates that agree on the layers
    before a stage; :meth:`candidate` gives one candidate's forward over a split's batches.

    ``layers``: the quantizable layer names; each, and each spiking neuron, must lie in exactly one
    stage. ``budget_bytes``: the memory the stored inputs may take (0: store nothing, run every
    forward whole). Entries are keyed by image range: give each order of a split its own ``split`` name.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], budget_bytes: int) -> None:
        self.model = model
        self.stages = model_stages(model)
        self.neurons = list(lif_layers(model))
        self.stage_of = {name: self._owner(name) for name in [*layers, *self.neurons]}
        self._layers = [[name for name in layers if self.stage_of[name] == s] for s in range(len(self.stages))]
        self.budget_bytes = budget_bytes
        self.stored_bytes = 0
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.stage_macs: list[float] = [0.0] * len(self.stages)  # per image, from :meth:`count_macs`
        self.macs = 0.0  # multiply-accumulates run by :meth:`candidate`'s forwards so far

    def _owner(self, name: str) -> int:
        found = [i for i, stage in enumerate(self.stages) if stage.holds(name)]
        if len(found) != 1:
            raise AqsvitError(f"model.aqsvit_stages: {name!r} lies in {len(found)} stages; each quantizable "
                              "layer and spiking neuron must lie in exactly one")
        return found[0]

    @torch.no_grad()
    def count_macs(self, x: torch.Tensor) -> None:
        """Measure each stage's MACs per image on ``x`` (a batch of model input)."""
        images = len(x)
        for s, stage in enumerate(self.stages):
            with FlopCounterMode(display=False) as counter:
                x = stage.forward(x)
            self.stage_macs[s] = counter.get_total_flops() / 2 / images
        functional.reset_net(self.model)

    @property
    def full_macs(self) -> float:
        """MACs of one image's full forward."""
        return sum(self.stage_macs)

    def clear(self) -> None:
        """Drop every stored input (a new search starts cold: its cost does not depend on what ran before)."""
        self._entries.clear()
        self.stored_bytes = 0

    def candidate(self, assignment: Mapping[str, tuple[str, int]], split: str = "test",
                  with_payload: bool = False) -> CandidateForward:
        """The forward of ``assignment`` (applied to the model by the caller) over batches of ``split``
        (``with_payload``: see :class:`CandidateForward`)."""
        keys, before = [], ()
        for names in self._layers:
            keys.append(before)
            before = before + tuple(tuple(assignment.get(name, FP32)) for name in names)
        return CandidateForward(self, keys, split, with_payload)

    def _lookup(self, key: tuple) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def _store(self, key: tuple, x: torch.Tensor) -> bool:
        if x.nbytes > self.budget_bytes:
            return False
        while self.stored_bytes + x.nbytes > self.budget_bytes:
            _, old = self._entries.popitem(last=False)
            self.stored_bytes -= old.input.nbytes
        self._entries[key] = Entry(x)
        self.stored_bytes += x.nbytes
        return True


class Entry:
    """A stored stage input, and what a caller attached to it about the layers before the stage."""

    def __init__(self, x: torch.Tensor) -> None:
        self.input = x
        self.payload: dict[str, Any] | None = None


class CandidateForward:
    """One candidate's forward through a :class:`StageCache`: ``forward(x, start)`` returns the
    logits of the batch ``x`` holding the split's images from ``start``, run from the deepest stored
    stage input that matches the candidate's layers before it, and stores the inputs of the stages
    after that one. After each call, :attr:`payload` is what was attached to the input it started
    from (None from the model input): the spiking neurons of the stages skipped did not run, so a
    caller recording them (drift) attaches what it computed for them with :meth:`attach`, reads it
    back from :attr:`payload`, and asks with ``with_payload`` only for inputs that carry one."""

    def __init__(self, cache: StageCache, keys: list[tuple], split: str, with_payload: bool = False) -> None:
        self.cache, self.keys, self.split, self.with_payload = cache, keys, split, with_payload
        self.payload: dict[str, Any] | None = None
        self._stored: list[tuple[int, tuple]] = []

    def __call__(self, x: torch.Tensor, start: int) -> torch.Tensor:
        cache, stop = self.cache, start + len(x)
        first, self.payload, self._stored = 0, None, []
        for s in range(len(cache.stages) - 1, 0, -1):
            entry = cache._lookup((s, self.keys[s], self.split, start, stop))
            if entry is not None and (entry.payload is not None or not self.with_payload):
                x, first, self.payload = entry.input, s, entry.payload
                break
        for s in range(first, len(cache.stages)):
            if s > first:
                key = (s, self.keys[s], self.split, start, stop)
                if cache._store(key, x):
                    self._stored.append((s, key))
            x = cache.stages[s].forward(x)
        cache.macs += (stop - start) * sum(cache.stage_macs[first:])
        return x

    def attach(self, per_neuron: Mapping[str, Any]) -> None:
        """Attach to each input the last call stored what ``per_neuron`` holds for the spiking
        neurons before its stage (a later call that starts there reads it as :attr:`payload`)."""
        for s, key in self._stored:
            entry = self.cache._entries.get(key)
            if entry is not None:
                entry.payload = {n: v for n, v in per_neuron.items() if self.cache.stage_of[n] < s}
