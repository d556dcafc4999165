"""A model from any importable builder: ``model.target=package.module:builder``.

The builder is resolved with the working directory on the import path, called with
``model.kwargs``, and checked: it must return an ``nn.Module`` that maps a batch of the input
shape to class scores ``[N, classes]``. Each failure is one line naming ``model.target`` and what
was wrong (:class:`~aqsvit.errors.AqsvitError`; exit 2 from the CLI).
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from spikingjelly.activation_based import functional
from torch import nn

from aqsvit.errors import AqsvitError, check_int, invalid
from aqsvit.models.spec import ModelSpec

FIELD = "model.target"


def _fail(target: str, problem: str, field: str = FIELD) -> AqsvitError:
    return AqsvitError(f"{field}: {target!r} {problem}")


def resolve(target: str) -> Callable[..., Any]:
    """The callable that ``package.module:attribute`` names (the cwd is on the import path)."""
    module_name, _, attr = str(target).partition(":")
    if not module_name or not attr:
        raise AqsvitError(f"{FIELD}: got {target!r}; allowed: package.module:callable")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing user code is the user's to see
        raise _fail(target, f"does not import ({type(exc).__name__}: {exc})") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise _fail(target, f"does not import (module {module_name} has no attribute {attr!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise _fail(target, f"is not callable (a {type(obj).__name__})")
    return obj


def target_name(target: str) -> str:
    """A short model name for a target: the builder's name (``pkg.mod:make_net`` -> ``make_net``)."""
    return str(target).partition(":")[2].rsplit(".", 1)[-1] or str(target)


def target_spec(target: str, kwargs: dict[str, Any] | None = None,
                input_shape: Sequence[int] | None = None) -> ModelSpec:
    """Resolve ``target`` into a spec: the builder's keyword defaults plus ``kwargs``, and the input
    shape (given, from the builder's ``in_channels``/``img_size``[/``frames``] arguments, or the
    built model's ``aqsvit_input_shape``)."""
    builder = resolve(target)
    kwargs = dict(kwargs or {})
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        params = {}
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = sorted(set(kwargs) - set(params))
    if unknown and not open_kwargs:
        raise AqsvitError(f"model.kwargs.{unknown[0]}: not an argument of {target}; allowed: "
                          f"{', '.join(sorted(k for k, p in params.items() if p.kind is not p.VAR_KEYWORD))}")
    full = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    full.update(kwargs)
    spec = ModelSpec.from_plain(target_name(target), {k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in full.items()}, target)
    if input_shape is not None:
        return _with_shape(spec, input_shape)
    if {"in_channels", "img_size"} <= set(full):
        return _with_shape(spec, ModelSpec(spec.name, full).input_shape)
    declared = getattr(build_target(spec, check_shape=False), "aqsvit_input_shape", None)
    if declared is None:
        raise _fail(target, "does not say its input shape; set model.input_shape (e.g. [1, 8, 8]) "
                            "or give the model an aqsvit_input_shape attribute")
    return _with_shape(spec, declared)


def _with_shape(spec: ModelSpec, shape: Sequence[int]) -> ModelSpec:
    allowed = "a list of positive integers without the batch dimension, e.g. [1, 8, 8]"
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or not shape:
        raise invalid("model.input_shape", shape, allowed)
    for d in shape:
        check_int("model.input_shape", d, 1, allowed=allowed)
    return ModelSpec(spec.name, spec.kwargs, spec.target, tuple(shape))


def build_target(spec: ModelSpec, check_shape: bool = True) -> nn.Module:
    """Call the spec's builder with its kwargs; the result must be an ``nn.Module``."""
    builder = resolve(spec.target)
    try:
        model = builder(**spec.kwargs)
    except Exception as exc:
        raise _fail(spec.target, f"fails to build with {spec.plain_kwargs()} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(model, nn.Module):
        raise _fail(spec.target, f"returned a {type(model).__name__}, not an nn.Module")
    model.spec = spec
    return model


@torch.no_grad()
def check_classifier(model: nn.Module, input_shape: Sequence[int], num_classes: int,
                     what: str, field: str = FIELD) -> None:
    """Fail unless ``model`` maps a batch ``[2, *input_shape]`` to class scores ``[2, num_classes]``."""
    want = (2, num_classes)
    param = next(model.parameters(), None)
    x = torch.zeros(2, *input_shape, device=param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        out = model(x)
    except Exception as exc:
        raise _fail(what, f"does not map the input shape [N, {', '.join(map(str, input_shape))}] to class "
                          f"scores [N, {num_classes}] ({type(exc).__name__}: {exc})", field) from exc
    finally:
        functional.reset_net(model)
        model.train(was_training)
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if got != want:
        raise _fail(what, f"does not map the input shape [N, {', '.join(map(str, input_shape))}] to class "
                          f"scores [N, {num_classes}] (got {got} for N=2)", field)
