"""Full-precision reference checkpoints: weights plus what makes them comparable.

A checkpoint holds the model spec (registered name and builder kwargs), the state_dict, the
full-precision accuracy and the fingerprint of the data it was measured on. It is a plain dict of
tensors and primitives, so it loads with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aqsvit.errors import AqsvitError, key_listing
from aqsvit.models.records import recorded_spec
from aqsvit.models.registry import ModelSpec, create_model

FORMAT = "aqsvit-checkpoint/1"
# What published training scripts pickle beside the weights (their command-line arguments); the
# only class admitted to weights_only loading, by name.
PUBLISHED_GLOBALS = [argparse.Namespace]


@dataclass
class Checkpoint:
    """A loaded reference checkpoint."""

    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    fp_accuracy: float
    data_fingerprint: str
    sha256: str

    def build(self) -> nn.Module:
        """Rebuild the model and load the weights (eval mode)."""
        model = create_model(self.spec)
        load_weights(model, self.state_dict, source=f"checkpoint of {self.spec.name}")
        return model.eval()


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` that names missing, unexpected and mis-shaped keys in one line."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    if missing or unexpected or shapes:
        listing = key_listing((("missing keys", missing), ("unexpected keys", unexpected), ("wrong shape keys", shapes)))
        raise AqsvitError(f"{source} does not match model {model.spec.name}: {listing}")
    model.load_state_dict(state_dict)


def save_checkpoint(path: str | Path, model: nn.Module, fp_accuracy: float,
                    data_fingerprint: str) -> Path:
    """Write ``model`` (built by ``create_model``) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model_name": model.spec.name,
        "model_kwargs": model.spec.plain_kwargs(),
        **({"model_target": model.spec.target, "model_input_shape": list(model.spec.input_shape)}
           if model.spec.target else {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "fp_accuracy": float(fp_accuracy),
        "data_fingerprint": data_fingerprint,
    }
    # one temp file per process: two workers caching the same reference must not write into one file
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, spec: ModelSpec | None = None, *, target: str | None = None) -> Checkpoint:
    """Load a checkpoint safely; any problem becomes one line naming the file.

    With ``spec``, a published state_dict or training-script checkpoint of that model is imported too
    (:mod:`aqsvit.models.reference_import`); its accuracy is then unknown (NaN). A checkpoint of a
    model from outside the registry loads only when the user names its builder: ``target`` (or
    ``spec.target``) must be the one it records (:mod:`aqsvit.models.records`)."""
    path = Path(path)
    if not path.is_file():
        raise AqsvitError(f"checkpoint {path}: no such file")
    raw = path.read_bytes()
    if not zipfile.is_zipfile(path):
        raise AqsvitError(f"checkpoint {path}: not a readable torch checkpoint (not torch.save's zip format)")
    try:
        with torch.serialization.safe_globals(PUBLISHED_GLOBALS):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = re.search(r"(Unsupported global: [^\n]*?)(?: was not an allowed global|\.|$)", str(exc))
        reason = detail.group(1) if detail else "it holds objects other than tensors and plain data"
        raise AqsvitError(f"checkpoint {path}: rejected by torch.load(weights_only=True): {reason}") from exc
    except Exception as exc:  # a damaged file fails anywhere inside torch's reader
        raise AqsvitError(f"checkpoint {path}: not a readable torch checkpoint (truncated or another format)") from exc
    digest = hashlib.sha256(raw).hexdigest()
    if spec is not None and not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        from aqsvit.models.reference_import import import_reference_state
        state = import_reference_state(create_model(spec), payload, source=f"checkpoint {path}")
        return Checkpoint(spec, state, float("nan"), "", digest)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise AqsvitError(f"checkpoint {path}: not an aqsvit checkpoint (expected format {FORMAT})")
    record = {"name": payload.get("model_name"), "kwargs": payload.get("model_kwargs"),
              "target": payload.get("model_target"), "input_shape": payload.get("model_input_shape")}
    named = target if target is not None else (spec.target if spec is not None else None)
    found = recorded_spec(record, f"checkpoint {path}", named)
    try:
        return Checkpoint(found, dict(payload["state_dict"]), float(payload["fp_accuracy"]),
                          str(payload["data_fingerprint"]), digest)
    except (KeyError, TypeError, ValueError) as exc:
        raise AqsvitError(f"checkpoint {path}: damaged aqsvit checkpoint (expected state_dict, fp_accuracy "
                          "and data_fingerprint)") from exc

