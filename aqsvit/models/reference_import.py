"""Import published Spikformer checkpoints (the reference implementation's state_dict layout).

The reference code (Zhou et al., ICLR 2023) names its weights ``patch_embed.proj_conv{,1,2,3}``,
``proj_bn{,1,2,3}``, ``rpe_conv``/``rpe_bn``, ``block.<i>.attn.{q,k,v}_conv``/``_bn``,
``block.<i>.attn.proj_conv``/``proj_bn``, ``block.<i>.mlp.fc{1,2}_conv``/``_bn`` and ``head``.
spikingjelly 2.0's Spikformer holds the same computation with one fused Q/K/V conv and BN, 1-d
MLP convs and bias-free convs before each BN. The mapping is exact: Q, K, V are concatenated in
that order, 1x1 Conv2d kernels become Conv1d kernels, and a conv bias ``b`` before a BN is folded
into the BN's running mean (``BN(Wx + b) = BN'(Wx)`` with ``mean' = mean - b``). The reference's
``norm1``/``norm2`` LayerNorms are never used in its forward pass and are dropped.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from aqsvit.errors import AqsvitError, key_listing

BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
STEM = [("proj_conv", "proj_bn"), ("proj_conv1", "proj_bn1"), ("proj_conv2", "proj_bn2"), ("proj_conv3", "proj_bn3")]
IGNORED = re.compile(r"block\.\d+\.norm[12]\.(weight|bias)")  # LayerNorms the forward never uses


def _unwrap(payload: object, source: str) -> dict[str, torch.Tensor]:
    """The state_dict inside a published checkpoint (``{"state_dict": ...}``, ``{"model": ...}``,
    DataParallel's ``module.`` prefix)."""
    state = payload
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AqsvitError(f"{source}: neither an aqsvit checkpoint nor a state_dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _fold(tensors: list[torch.Tensor]) -> torch.Tensor:
    mean, bias = tensors
    if bias.shape != mean.shape:
        raise RuntimeError("bias and running mean differ in shape")
    return mean - bias


_COMBINE = {
    "copy": lambda t: t[0], "first": lambda t: t[0], "cat": torch.cat, "fold": _fold,
    "conv1d": lambda t: t[0].reshape(t[0].shape[0], t[0].shape[1], -1) if t[0].ndim >= 2 else t[0]}


def _plan(model: nn.Module) -> list[tuple[str, list[str], str]]:
    """(spikingjelly key, reference keys, how) for every tensor of ``model``."""
    plan = []
    for stage, (conv, bn) in enumerate(STEM):
        prefix = f"patch_embed.stages.{stage}.conv_bn.block"
        plan.append((f"{prefix}.0.weight", [f"patch_embed.{conv}.weight"], "copy"))
        plan += [(f"{prefix}.1.{f}", [f"patch_embed.{bn}.{f}"], "copy") for f in BN_FIELDS]
    prefix = "patch_embed.positional_encoding.conv_bn.block"
    plan.append((f"{prefix}.0.weight", ["patch_embed.rpe_conv.weight"], "copy"))
    plan += [(f"{prefix}.1.{f}", [f"patch_embed.rpe_bn.{f}"], "copy") for f in BN_FIELDS]
    for i in range(len(model.blocks)):
        ours, ref = f"blocks.{i}", f"block.{i}"
        plan.append((f"{ours}.attn.qkv_conv_bn.0.weight", [f"{ref}.attn.{p}_conv.weight" for p in "qkv"], "cat"))
        plan += [(f"{ours}.attn.qkv_conv_bn.1.{f}", [f"{ref}.attn.{p}_bn.{f}" for p in "qkv"],
                  "first" if f == "num_batches_tracked" else "cat") for f in BN_FIELDS]
        for our_conv, ref_conv, ref_bn in ((f"{ours}.attn.proj_conv_bn", f"{ref}.attn.proj_conv", f"{ref}.attn.proj_bn"),
                                           (f"{ours}.mlp.fc1", f"{ref}.mlp.fc1_conv", f"{ref}.mlp.fc1_bn"),
                                           (f"{ours}.mlp.fc2", f"{ref}.mlp.fc2_conv", f"{ref}.mlp.fc2_bn")):
            plan.append((f"{our_conv}.0.weight", [f"{ref_conv}.weight"], "conv1d"))
            plan += [(f"{our_conv}.1.{f}", [f"{ref_bn}.{f}"], "copy") for f in BN_FIELDS if f != "running_mean"]
            plan.append((f"{our_conv}.1.running_mean", [f"{ref_bn}.running_mean", f"{ref_conv}.bias"], "fold"))
    plan += [("head.weight", ["head.weight"], "copy"), ("head.bias", ["head.bias"], "copy")]
    return plan


def import_reference_state(model: nn.Module, payload: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Map a reference-layout Spikformer state_dict onto ``model`` (spikingjelly 2.0's Spikformer).

    A mismatch is one line naming the missing, unexpected and mis-shaped reference keys."""
    state = _unwrap(payload, source)
    own = model.state_dict()
    plan = _plan(model)
    if set(own) != {ours for ours, _, _ in plan}:
        raise AqsvitError(f"{source}: model {model.spec.name} is not a Spikformer the reference layout maps onto")
    expected = {k for _, refs, _ in plan for k in refs}
    given = {k for k in state if not IGNORED.fullmatch(k)}
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    mapped, shapes = {}, []
    for ours, refs, how in ([] if missing else plan):
        tensors = [state[k] for k in refs]
        try:
            value = _COMBINE[how](tensors)
        except RuntimeError:  # tensors that cannot be concatenated or folded
            value = None
        if value is None or value.shape != own[ours].shape:
            shapes.extend(f"{k} {tuple(t.shape)}" for k, t in zip(refs, tensors))
            continue
        mapped[ours] = value.to(own[ours].dtype)
    if missing or unexpected or shapes:
        listing = key_listing((("missing keys", missing), ("unexpected keys", unexpected), ("wrong shape", shapes)))
        raise AqsvitError(f"{source}: not a reference Spikformer state_dict for {model.spec.name} "
                          f"{model.spec.plain_kwargs()}: {listing}")
    return mapped
