"""A registry of model builders in the spirit of timm's ``register_model``/``create_model``.

Adding a model is one decorated function that returns an ``nn.Module`` mapping images
``[N, C, H, W]`` to class scores ``[N, classes]``. The registry records each builder's default
keyword arguments so a checkpoint can rebuild exactly the model it was trained on.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from aqsvit.errors import AqsvitError, check_int, invalid
from aqsvit.models.spec import ModelSpec

# builder arguments that count something (timesteps, blocks, channels, pixels, classes): each at
# least 1 (a tuple, as QKFormer's per-stage depths, element-wise); a zero builds a model that
# computes nothing, trains to chance and still "searches"
COUNTS = ("T", "frames", "depths", "num_heads", "embed_dims", "img_size", "patch_size", "in_channels", "num_classes")
_MODELS: dict[str, Callable[..., nn.Module]] = {}
_INFO: dict[str, ModelInfo] = {}


@dataclass(frozen=True)
class ModelInfo:
    """What the registry says of a model besides how to build it.

    ``reference`` names the published code whose eval forward the model computes exactly
    (``"owner/repo@commit path"``), or is ``None`` for spikingjelly's own models and ours;
    ``preprocess`` is the input normalisation preset its weights expect (``"none"``, ``"cifar10"``,
    ``"cifar100"``, ``"imagenet"``), which a data set uses unless the user overrides it;
    ``crop_pct`` the evaluation crop of folder images in its published evaluation (Spikformer's
    ImageNet config 1.0, Spike-driven Transformer's 0.95, QKFormer's 0.875), None = the preset's."""

    name: str
    reference: str | None = None
    preprocess: str = "none"
    crop_pct: float | None = None


def register_model(fn: Callable[..., nn.Module] | None = None, *, reference: str | None = None,
                   preprocess: str = "none", crop_pct: float | None = None):
    """Register a builder under its function name; its keyword defaults are the model's defaults.

    Use bare (``@register_model``) or with metadata (``@register_model(reference=..., preprocess=...)``),
    see :class:`ModelInfo`."""
    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if not callable(builder) or not hasattr(builder, "__name__"):
            raise AqsvitError(f"model.name: plug-in {builder!r} is not a builder function (a callable with a __name__)")
        if builder.__name__ in _MODELS:
            raise ValueError(f"model {builder.__name__!r} is registered twice")
        _MODELS[builder.__name__] = builder
        _INFO[builder.__name__] = ModelInfo(builder.__name__, reference, preprocess, crop_pct)
        return builder
    return add if fn is None else add(fn)


def model_info(name: str) -> ModelInfo:
    """The registry's metadata of model ``name``."""
    if name not in _INFO:
        raise invalid("model.name", name, list_models())
    return _INFO[name]


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_MODELS)


def model_spec(name: str, **overrides: Any) -> ModelSpec:
    """Resolve ``name`` and ``overrides`` against the builder's defaults, rejecting unknown keys."""
    if name not in _MODELS:
        raise invalid("model.name", name, list_models())
    params = inspect.signature(_MODELS[name]).parameters
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise invalid(f"model.{unknown[0]}", overrides[unknown[0]], sorted(params))
    kwargs = {k: p.default for k, p in params.items()}
    kwargs.update(overrides)
    for key in COUNTS:
        if key in kwargs:
            values = kwargs[key] if isinstance(kwargs[key], (tuple, list)) else (kwargs[key],)
            for value in values:
                check_int(f"model.kwargs.{key}", value, 1, allowed="integers >= 1"
                          + (" (one per stage)" if isinstance(kwargs[key], (tuple, list)) else ""))
    return ModelSpec(name, kwargs)


def create_model(name: str | ModelSpec, **overrides: Any) -> nn.Module:
    """Build a registered model; ``model.spec`` records how to build it again."""
    spec = name if isinstance(name, ModelSpec) else model_spec(name, **overrides)
    if spec.target is not None:
        from aqsvit.models.target import build_target
        return build_target(spec)
    if spec.name not in _MODELS:
        raise invalid("model.name", spec.name, list_models())
    try:
        model = _MODELS[spec.name](**spec.kwargs)
    except (ValueError, TypeError, AssertionError) as exc:
        raise AqsvitError(f"model {spec.name}: cannot build with {spec.kwargs}: {exc}") from exc
    if not isinstance(model, nn.Module):
        builder = _MODELS[spec.name]
        raise AqsvitError(f"model.name: plug-in {spec.name!r} ({builder.__module__}.{builder.__qualname__}) built "
                          f"{type(model).__name__}, not a torch.nn.Module")
    model.spec = spec
    return model
