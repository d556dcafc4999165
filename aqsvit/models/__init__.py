"""Spiking ViT models on spikingjelly, a timm-style registry, and checkpoints."""
from aqsvit.models import published as _published  # noqa: F401  (registers the builders)
from aqsvit.models import spikformer as _spikformer  # noqa: F401
from aqsvit.models.registry import (
    ModelInfo, ModelSpec, create_model, list_models, model_info, model_spec, register_model,
)
from aqsvit.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

__all__ = [
    "Checkpoint", "ModelInfo", "ModelSpec", "create_model", "list_models", "load_checkpoint", "model_info", "model_spec",
    "register_model", "save_checkpoint",
]
