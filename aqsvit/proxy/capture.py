"""Record what every LIF layer does during a forward pass: membrane potentials and spikes.

Any spikingjelly neuron node (a ``BaseNode`` subclass) is recorded. In multi-step mode a node keeps
its post-reset potentials ``v_seq`` [T, N, ...] when ``store_v_seq=True``; a forward hook reads them
right after the node runs. In single-step mode (the model loops over time itself) the hook reads
``v`` after every step and the steps are stacked. A model without neurons records only its logits.
With ``feed`` a forward pre-hook instead replaces each weight layer's input by a given tensor
(the full-precision model's), which isolates each layer's own damage (layer-local drift).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.neuron import BaseNode
from torch import nn


def lif_layers(model: nn.Module) -> dict[str, BaseNode]:
    """Every spiking neuron layer of ``model``, in network order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, BaseNode)}


@dataclass
class Capture:
    """One forward pass: per LIF layer its potentials and spikes, and the model's logits."""

    v: dict[str, torch.Tensor] = field(default_factory=dict)
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    logits: torch.Tensor | None = None


@contextmanager
def _hooks(model: nn.Module, capture: Capture, record_inputs: tuple[str, ...],
           feed: Mapping[str, torch.Tensor] | None) -> Iterator[None]:
    nodes = lif_layers(model)
    modules = dict(model.named_modules())
    saved = {name: node.store_v_seq for name, node in nodes.items()}
    handles = []

    steps: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}

    def on_node(name: str):
        def hook(node: BaseNode, _inputs, output: torch.Tensor) -> None:
            if node.step_mode == "m":
                capture.v[name] = node.v_seq.detach()
                capture.spikes[name] = output.detach()
                return
            vs, spikes = steps.setdefault(name, ([], []))
            vs.append(torch.as_tensor(node.v).detach().expand_as(output).clone())
            spikes.append(output.detach())
        return hook

    def on_input(name: str):
        def hook(_module, inputs):
            if feed is not None:
                return (feed[name],)
            capture.inputs[name] = inputs[0].detach()
            return None
        return hook

    try:
        for name, node in nodes.items():
            node.store_v_seq = True
            handles.append(node.register_forward_hook(on_node(name)))
        for name in record_inputs if feed is None else feed:
            handles.append(modules[name].register_forward_pre_hook(on_input(name)))
        yield
        for name, (vs, spikes) in steps.items():
            capture.v[name], capture.spikes[name] = torch.stack(vs), torch.stack(spikes)
    finally:
        for handle in handles:
            handle.remove()
        for name, node in nodes.items():
            node.store_v_seq = saved[name]


@torch.no_grad()
def capture(model: nn.Module, x: torch.Tensor, record_inputs: tuple[str, ...] = (),
            feed: Mapping[str, torch.Tensor] | None = None,
            forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Capture:
    """Run ``model`` on ``x`` and return what its LIF layers did (state reset afterwards).
    ``forward`` computes the logits instead of ``model(x)`` (a stage cache's: only the neurons
    of the stages it runs are recorded)."""
    result = Capture()
    model.eval()
    with _hooks(model, result, record_inputs, feed):
        result.logits = (model if forward is None else forward)(x).detach()
    functional.reset_net(model)
    return result
