"""Export a quantized spiking chain to the Neuromorphic Intermediate Representation (``nir``).

NIR expresses a graph of per-timestep nodes: convolutions, affine maps, pooling, flatten and
neurons. A user's spiking CNN is such a chain; a spiking transformer is not (its attention
multiplies activations, its blocks add residuals). The exporter runs the model once on a sample,
follows its modules in the order they run, and accepts a model only when each module consumes
what the module before it produced: the first one the repeated input (the time loop's encoding),
the model's output the time mean of the last one (its decoding). Otherwise one line names the
first module NIR cannot express.

Mapping (time step ``dt = 1``): Conv2d -> ``nir.Conv2d``; Linear -> ``nir.Affine``; BatchNorm
after a convolution or linear map -> folded into that node's bias plus a ``nir.Scale`` (the
quantized weights stay exactly as evaluated); AvgPool2d -> ``nir.AvgPool2d``; Flatten ->
``nir.Flatten``; spikingjelly ``LIFNode`` (hard reset) -> ``nir.LIF`` with ``v_leak = v_reset``
and ``r = 1`` (``decay_input``) or ``r = tau``. Each weight node's metadata holds its layers'
schemes, bits and scales. :func:`from_nir` rebuilds a torch module from such a graph, so the
round trip can be checked against the original model.
"""
from __future__ import annotations

from collections.abc import Mapping

import nir
import numpy as np
import torch
from spikingjelly.activation_based import neuron
from spikingjelly.activation_based.neuron import BaseNode
from torch import nn

from aqsvit.errors import AqsvitError
from aqsvit.quant import LayerQuantizer
from aqsvit.hardware import ANY, HardwareTarget
from aqsvit.quant.quantizers import pot_exponents, uniform_levels

PASS_THROUGH = (nn.Dropout, nn.Identity)
EXPRESSED = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d, nn.Flatten, neuron.LIFNode)


def _refuse(name: str, why: str) -> AqsvitError:
    return AqsvitError(f"nir export: NIR cannot express {name}: {why}; it expresses chains of Conv2d, Linear, "
                       "BatchNorm, AvgPool2d, Flatten and LIF (hard reset)")


def _run_order(model: nn.Module, sample: torch.Tensor) -> tuple[list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]],
                                                               torch.Tensor]:
    """Every leaf module in the order it runs on ``sample``, with its input and output."""
    calls, hooks = [], []
    neurons = [name + "." for name, m in model.named_modules() if isinstance(m, BaseNode)]
    for name, module in model.named_modules():
        if any(name.startswith(n) for n in neurons):
            continue  # a neuron's own parts (its surrogate function)
        if not list(module.children()) or isinstance(module, BaseNode):
            hooks.append(module.register_forward_hook(
                lambda m, args, out, name=name: calls.append((name, m, args[0] if args else None, out))))
    try:
        with torch.no_grad():
            output = model(sample)
    finally:
        for hook in hooks:
            hook.remove()
        from spikingjelly.activation_based import functional
        functional.reset_net(model)
    return calls, output


def _per_step(t: torch.Tensor, steps: int, batch: int) -> torch.Tensor | None:
    """``t`` as ``[T, N, ...]`` when it is that or the time-folded ``[T * N, ...]``, else None."""
    if t.dim() >= 2 and tuple(t.shape[:2]) == (steps, batch):
        return t
    if t.dim() >= 1 and t.shape[0] == steps * batch:
        return t.reshape(steps, batch, *t.shape[1:])
    return None


def _check_chain(calls: list, sample: torch.Tensor, output: torch.Tensor) -> int:
    """The number of time steps T, after checking that ``calls`` form a chain NIR expresses over
    the repeated input: each module's input is what the one before it produced (time-folded or not)."""
    if not calls:
        raise AqsvitError("nir export: the model ran no module")
    batch = sample.shape[0]
    first_name, _, first_in, _ = calls[0]
    steps = first_in.shape[0] if first_in is not None and first_in.dim() == sample.dim() + 1 else \
        first_in.shape[0] // batch if first_in is not None and first_in.shape[0] % batch == 0 else 0
    encoded = _per_step(first_in, steps, batch) if steps else None
    if encoded is None or not torch.equal(encoded, sample.expand_as(encoded)):
        raise _refuse(first_name, "its input is not the model's input repeated over time steps")
    previous = None
    for name, module, inp, out in calls:
        if not isinstance(module, EXPRESSED + PASS_THROUGH):
            raise _refuse(name, f"a {type(module).__name__}")
        if isinstance(module, neuron.LIFNode) and module.v_reset is None:
            raise _refuse(name, "a LIF neuron with soft reset")
        if previous is not None:
            here, before = _per_step(inp, steps, batch), _per_step(previous, steps, batch)
            if (here is None or before is None or inp.data_ptr() != previous.data_ptr()
                    or here.shape != before.shape):
                raise _refuse(name, "its input is not what the module before it produced (a branch, a "
                                    "residual, attention or a reshape)")
        previous = out
    decoded = _per_step(previous, steps, batch)
    if decoded is None or decoded.shape[1:] != output.shape or not torch.equal(decoded.mean(0), output):
        raise _refuse(calls[-1][0], "the model's output is not the time mean of this module's")
    return steps


def _layer_metadata(quantizer: LayerQuantizer, module_name: str, assignment: Mapping[str, tuple[str, int]],
                    target: HardwareTarget) -> dict[str, dict]:
    """Scheme, bits and scales of each quantized layer (block of output channels) of one module,
    by layer name (plain arrays and strings: NIR files are HDF5)."""
    blocks = {}
    for layer in quantizer.layers:
        if layer.module_name != module_name:
            continue
        scheme, bits = assignment.get(layer.name, ("fp32", 32))
        entry = {"rows": np.array([layer.out_start, layer.out_stop]), "scheme": scheme, "bits": int(bits)}
        if scheme != "fp32":
            w = quantizer.fp_weight(layer)
            scale = (uniform_levels if scheme == "uniform" else pot_exponents)(w, bits, target.scale)[0]
            entry.update(scales=scale.flatten().numpy().astype(np.float32), scale_per=target.scale.per,
                         scale_meaning="step" if scheme == "uniform" else "a (weight = sign * a * 2^-k)")
        blocks[layer.name] = entry
    return blocks


def to_nir(model: nn.Module, sample: torch.Tensor, assignment: Mapping[str, tuple[str, int]] | None = None,
           target: HardwareTarget = ANY, split_qkv: bool = True) -> nir.NIRGraph:
    """The NIR graph of ``model`` quantized by ``assignment`` (weights exactly as evaluated), for
    inputs shaped like ``sample`` (a batch). One line when the model is not a chain NIR expresses."""
    quantizer = LayerQuantizer(model.eval(), split_qkv=split_qkv, target=target)
    assignment = dict(assignment or {})
    with quantizer.applied(assignment):
        calls, output = _run_order(model, sample)
        steps = _check_chain(calls, sample, output)
        nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(sample.shape[1:])})}
        order = ["input"]
        for name, module, inp, out in calls:
            node_name = name.replace(".", "_")
            if isinstance(module, PASS_THROUGH):
                continue
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                scale, shift = _batchnorm(module)
                previous = nodes[order[-1]]
                if not isinstance(previous, (nir.Conv2d, nir.Affine)) or np.any(scale == 0):
                    raise _refuse(name, "a BatchNorm that does not follow a convolution or linear map")
                previous.bias = previous.bias + shift / scale
                shape = tuple(out.shape[2:])  # one time step of one sample: NIR types hold whole shapes
                per_channel = scale.reshape(-1, *([1] * (len(shape) - 1)))
                nodes[node_name] = nir.Scale(np.broadcast_to(per_channel, shape).astype(np.float32))
            else:
                nodes[node_name] = _node(module, inp)
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nodes[node_name].metadata["quantization"] = _layer_metadata(quantizer, name, assignment, target)
            order.append(node_name)
        nodes["output"] = nir.Output(output_type={"output": np.array(calls[-1][3].shape[2:])})
        order.append("output")
    graph = nir.NIRGraph(nodes, list(zip(order, order[1:])))
    graph.metadata.update(time_steps=int(steps), encoding="repeat", decoding="mean", dt=1.0,
                          target=target.name)
    return graph


def _batchnorm(bn: nn.modules.batchnorm._BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm in eval mode as ``y * scale + shift`` per channel."""
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    shift = (bn.bias - bn.running_mean * scale).detach()
    return scale.numpy().astype(np.float64), shift.numpy().astype(np.float64)


def _node(module: nn.Module, inp: torch.Tensor) -> nir.NIRNode:
    """One NIR node for ``module`` (its per-time-step input ``inp[0]`` gives the shapes)."""
    if isinstance(module, nn.Conv2d):
        bias = module.bias.detach().numpy() if module.bias is not None else np.zeros(module.out_channels)
        return nir.Conv2d(tuple(inp.shape[-2:]), module.weight.detach().numpy().copy(), module.stride,
                          module.padding, module.dilation, module.groups, bias.astype(np.float64))
    if isinstance(module, nn.Linear):
        bias = module.bias.detach().numpy() if module.bias is not None else np.zeros(module.out_features)
        return nir.Affine(module.weight.detach().numpy().copy(), bias.astype(np.float64))
    if isinstance(module, nn.AvgPool2d):
        pair = nn.modules.utils._pair
        return nir.AvgPool2d(np.array(pair(module.kernel_size)), np.array(pair(module.stride)),
                             np.array(pair(module.padding)))
    if isinstance(module, nn.Flatten):
        shape = tuple(inp.shape[2:])  # one time step of one sample
        end = module.end_dim if module.end_dim < 0 else module.end_dim - 1
        return nir.Flatten({"input": np.array(shape)}, module.start_dim - 1, end)
    shape = tuple(inp.shape[2:])
    tau = float(module.tau)
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, 1.0 if module.decay_input else tau),
                   v_leak=np.full(shape, float(module.v_reset)), v_threshold=np.full(shape, float(module.v_threshold)),
                   v_reset=np.full(shape, float(module.v_reset)))


class _LIF(nn.Module):
    """NIR's LIF at ``dt = 1``: ``v += (v_leak - v + r * I) / tau``; a spike at ``v >= v_threshold``
    resets ``v`` to ``v_reset``."""

    def __init__(self, node: nir.LIF) -> None:
        super().__init__()
        for field in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            self.register_buffer(field, torch.as_tensor(np.asarray(getattr(node, field)), dtype=torch.float32))
        self.v: torch.Tensor | None = None

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        v = torch.full_like(current, 0.0) + self.v_reset if self.v is None else self.v
        h = v + (self.v_leak - v + self.r * current) / self.tau
        spike = (h >= self.v_threshold).to(h.dtype)
        self.v = h * (1 - spike) + self.v_reset * spike
        return spike


class _Scale(nn.Module):
    def __init__(self, scale: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _module(node: nir.NIRNode) -> nn.Module:
    if isinstance(node, nir.Conv2d):
        weight = torch.as_tensor(node.weight, dtype=torch.float32)
        conv = nn.Conv2d(weight.shape[1] * node.groups, weight.shape[0], tuple(weight.shape[2:]), node.stride,
                         node.padding, node.dilation, node.groups)
        conv.weight.data, conv.bias.data = weight, torch.as_tensor(node.bias, dtype=torch.float32)
        return conv
    if isinstance(node, nir.Affine):
        linear = nn.Linear(node.weight.shape[1], node.weight.shape[0])
        linear.weight.data = torch.as_tensor(node.weight, dtype=torch.float32)
        linear.bias.data = torch.as_tensor(node.bias, dtype=torch.float32)
        return linear
    if isinstance(node, nir.Scale):
        return _Scale(node.scale)
    if isinstance(node, nir.AvgPool2d):
        return nn.AvgPool2d(tuple(node.kernel_size), tuple(node.stride), tuple(node.padding))
    if isinstance(node, nir.Flatten):
        return nn.Flatten(node.start_dim + 1, node.end_dim if node.end_dim < 0 else node.end_dim + 1)
    if isinstance(node, nir.LIF):
        return _LIF(node)
    raise AqsvitError(f"nir import: a {type(node).__name__} node is not one aqsvit exports")


class NIRChain(nn.Module):
    """A torch module running a chain NIR graph over its time steps (repeat encoding, mean decoding)."""

    def __init__(self, graph: nir.NIRGraph) -> None:
        super().__init__()
        following = dict(graph.edges)
        order, name = [], following["input"]
        while name != "output":
            order.append(name)
            name = following[name]
        self.names = order
        self.chain = nn.ModuleList(_module(graph.nodes[n]) for n in order)
        self.steps = int(graph.metadata["time_steps"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.chain:
            if isinstance(module, _LIF):
                module.v = None
        outputs = []
        for _ in range(self.steps):
            h = x
            for module in self.chain:
                h = module(h)
            outputs.append(h)
        return torch.stack(outputs).mean(0)


def from_nir(graph: nir.NIRGraph) -> NIRChain:
    """The torch module of a graph :func:`to_nir` wrote (the round trip's other half)."""
    return NIRChain(graph).eval()
