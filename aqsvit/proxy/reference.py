"""The full-precision side of every drift: computed once per model and calibration set.

Held in memory for the process and saved to disk (beside the checkpoint), so that neither a second
candidate nor a second worker pays for it again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from aqsvit.data import iter_batches, take
from aqsvit.proxy.capture import capture

log = logging.getLogger(__name__)

FORMAT = "aqsvit-fp-reference/1"


@dataclass
class FPReference:
    """Calibration batches with the FP model's potentials, spikes, logits and layer inputs."""

    images: list[torch.Tensor]
    labels: list[torch.Tensor]
    v: list[dict[str, torch.Tensor]]
    spikes: list[dict[str, torch.Tensor]]
    logits: list[torch.Tensor]
    inputs: list[dict[str, torch.Tensor]]
    source: str = "computed"

    @property
    def num_images(self) -> int:
        return sum(len(x) for x in self.images)

    def payload(self) -> dict:
        return {"format": FORMAT, "images": self.images, "labels": self.labels, "v": self.v,
                "spikes": self.spikes, "logits": self.logits, "inputs": self.inputs}


_MEMORY: dict[tuple[str, str], FPReference] = {}
BUILDS = {"computed": 0}


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device


def _moved(value, device: torch.device):
    """``value`` (tensors in lists and dicts) on ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_moved(v, device) for v in value]
    if isinstance(value, dict):
        return {k: _moved(v, device) for k, v in value.items()}
    return value


def compute_reference(model: nn.Module, calib: Dataset, images: int, batch_size: int,
                      layer_inputs: tuple[str, ...]) -> FPReference:
    """Run the FP model over the first ``images`` calibration images in batches, on the model's
    device; everything stays there (each candidate's drift compares against it on the device)."""
    BUILDS["computed"] += 1
    device = _device(model)
    parts = FPReference([], [], [], [], [], [])
    for x, y in iter_batches(take(calib, images), batch_size):
        x, y = x.to(device), y.to(device)
        cap = capture(model, x, record_inputs=layer_inputs)
        parts.images.append(x)
        parts.labels.append(y)
        parts.v.append(cap.v)
        parts.spikes.append(cap.spikes)
        parts.logits.append(cap.logits)
        parts.inputs.append(cap.inputs)
    return parts


def get_reference(model: nn.Module, calib: Dataset, key: str, images: int = 128,
                  batch_size: int = 16, layer_inputs: tuple[str, ...] = (),
                  cache_dir: str | Path | None = None) -> FPReference:
    """The FP reference for ``key`` (checkpoint hash + data fingerprint): memory, disk, or computed,
    held on the model's device."""
    full_key = f"{key}-n{images}-b{batch_size}-i{len(layer_inputs)}"
    device = _device(model)
    if (full_key, str(device)) in _MEMORY:
        ref = _MEMORY[full_key, str(device)]
        ref.source = "memory"
        return ref
    path = Path(cache_dir) / f"fp-reference-{full_key}.pt" if cache_dir else None
    ref = None
    if path is not None and path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("format") == FORMAT:
                ref = FPReference(*(_moved(payload[k], device)
                                    for k in ("images", "labels", "v", "spikes", "logits", "inputs")), source="disk")
        except Exception:  # a damaged cache file is recomputed, never trusted
            log.warning("ignoring unreadable FP reference cache %s", path)
    if ref is None:
        ref = compute_reference(model, calib, images, batch_size, layer_inputs)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                torch.save(_moved(ref.payload(), torch.device("cpu")), tmp)
                tmp.replace(path)
            except OSError as exc:
                log.warning("cannot cache FP reference at %s: %s", path, exc)
    _MEMORY[full_key, str(device)] = ref
    return ref
