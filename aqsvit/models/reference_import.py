"""Import published checkpoints: the state_dicts of the authors' code, and what their training
scripts save (``{"model" | "state_dict" | "state_dict_ema": ..., "args": argparse.Namespace, ...}``).

The published models of :mod:`aqsvit.models.published` keep the authors' parameter names, so the
mapping is exact and one to one: DataParallel's ``module.`` prefix is removed, the published keys the
forward never uses (``model.unused_reference_keys``, a regex) are dropped, a model whose names differ
renames them itself (``model.map_reference_state(state) -> state``, optional), and every other key
must name a tensor of the same shape. Anything else is one line naming the missing, unexpected and
mis-shaped keys.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from aqsvit.errors import AqsvitError, key_listing

WRAPPERS = ("state_dict", "model", "state_dict_ema")


def unwrap(payload: object, source: str) -> dict[str, torch.Tensor]:
    """The state_dict inside a published checkpoint (a training script's dict, or the state_dict itself)."""
    state = payload
    for key in WRAPPERS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AqsvitError(f"{source}: neither an aqsvit checkpoint nor a state_dict of tensors "
                          f"(nor a dict holding one under {', '.join(WRAPPERS)})")
    return {k.removeprefix("module."): v for k, v in state.items()}


def import_reference_state(model: nn.Module, payload: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Map a published state_dict onto ``model``; a mismatch is one line naming the keys."""
    state = unwrap(payload, source)
    unused = re.compile(getattr(model, "unused_reference_keys", "(?!)"))
    state = {k: v for k, v in state.items() if not unused.fullmatch(k)}
    if hasattr(model, "map_reference_state"):
        state = model.map_reference_state(state)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} (model: {tuple(own[k].shape)})"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        listing = key_listing((("missing keys", missing), ("unexpected keys", unexpected), ("wrong shape", shapes)))
        raise AqsvitError(f"{source}: not a state_dict of {model.spec.name} {model.spec.plain_kwargs()}: {listing}")
    return {k: state[k] for k in own}  # dtype kept: a float64 checkpoint stays exact in a float64 model
