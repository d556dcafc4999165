"""Input preprocessing as data configuration: the normalisation a model's weights expect, and the
standard evaluation transform of folder images (resize the shorter side, centre crop).

Images are kept in their compact form (uint8 where the source is 8-bit, else float in [0, 1]) and
turned into model input by :meth:`Preprocess.to_input`, the one function every consumer uses
(training, calibration, evaluation, fine-tuning, export checks), on the CPU or on the device.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from aqsvit.errors import AqsvitError, check_number, invalid

# name: (mean, std, evaluation crop_pct unless the model names its own): cifar10 as Spikformer's,
# Spike-driven Transformer's and QKFormer's CIFAR configs, cifar100 as Spike-driven Transformer's
# (QKFormer's CIFAR-100 config normalises with the cifar10 values), imagenet as timm's (crop 0.875)
PRESETS: dict[str, tuple[tuple[float, ...] | None, tuple[float, ...] | None, float]] = {
    "none": (None, None, 1.0),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 1.0),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761), 1.0),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 0.875),
}


@dataclass(frozen=True)
class Preprocess:
    """How stored images become model input: ``(x / 255 if uint8) - mean) / std`` per channel.

    ``crop_pct``: folder images are resized (bicubic) so that their shorter side is
    ``floor(size / crop_pct)``, then centre-cropped to the model's size (timm's evaluation transform)."""

    name: str = "none"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    crop_pct: float = 1.0

    def describe(self) -> str:
        """What changes the data (part of the data fingerprint); '' for the identity."""
        if self.mean is None:
            return ""
        return f"normalize {self.name} {list(self.mean)} {list(self.std)}"

    def check_channels(self, channels: int) -> None:
        if self.mean is not None and len(self.mean) != channels:
            raise AqsvitError(f"dataset.normalize: {self.name} has {len(self.mean)} channels, the model takes "
                              f"{channels}; allowed here: none, or a mean/std of {channels} values")

    def with_crop(self, crop_pct: float | None) -> Preprocess:
        """This preprocessing with another evaluation crop (None keeps the preset's)."""
        if crop_pct is None:
            return self
        return replace(self, crop_pct=check_number("dataset.kwargs.crop_pct", crop_pct, 0, 1, lo_open=True,
                                                   allowed="numbers in (0, 1], or null (the preset's)"))

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """Stored images ``[..., C, H, W]`` (uint8 or float, any device) to float32 model input."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if self.mean is None:
            return x
        mean, std = _channel_stats(self.mean, self.std, x.device)
        return (x - mean) / std


IDENTITY = Preprocess()


@functools.lru_cache(maxsize=32)
def _channel_stats(mean: tuple[float, ...], std: tuple[float, ...],
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as ``[C, 1, 1]`` float32 tensors on ``device``, made once (no copy per batch)."""
    shape = (len(mean), 1, 1)
    return (torch.tensor(mean, dtype=torch.float32).view(shape).to(device),
            torch.tensor(std, dtype=torch.float32).view(shape).to(device))


def resolve_preprocess(normalize: str | Mapping | None, model_preset: str = "none",
                       model_crop: float | None = None) -> Preprocess:
    """The preprocessing of a data set: ``normalize`` (a preset name, or ``{mean: [...], std: [...]}``)
    or, when None, the model's preset (``aqsvit.models.model_info(name).preprocess``); the evaluation
    crop is the model's (``model_info(name).crop_pct``) when it names one, else the preset's."""
    value = model_preset if normalize is None else normalize
    if isinstance(value, Mapping):
        try:
            mean, std = tuple(float(v) for v in value["mean"]), tuple(float(v) for v in value["std"])
        except (KeyError, TypeError, ValueError):
            raise invalid("dataset.normalize", dict(value), "none, cifar10, cifar100, imagenet, or {mean: [...], "
                          "std: [...]}") from None
        if len(mean) != len(std) or not mean or min(std) <= 0:
            raise invalid("dataset.normalize", dict(value), "mean and std of equal length, std > 0")
        preset = Preprocess("custom", mean, std, 1.0)
    elif value in PRESETS:
        preset = Preprocess(value, *PRESETS[value])
    else:
        raise invalid("dataset.normalize", value, [*PRESETS, "{mean: [...], std: [...]}"])
    return preset if model_crop is None else replace(preset, crop_pct=float(model_crop))


def center_crop_resize(img: Image.Image, size: tuple[int, int], crop_pct: float) -> Image.Image:
    """timm's evaluation transform on a PIL image: bicubic resize of the shorter side to
    ``floor(size / crop_pct)`` (the aspect ratio kept), then the centre ``size = (height, width)``."""
    height, width = size
    scale = math.floor(min(height, width) / crop_pct)
    w, h = img.size
    new = (scale, int(scale * h / w)) if w <= h else (int(scale * w / h), scale)
    if new != (w, h):
        img = img.resize(new, Image.BICUBIC)
    w, h = img.size
    if w < width or h < height:  # a shape the crop does not fit: stretch instead (any image still loads)
        return img.resize((width, height), Image.BICUBIC)
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return img.crop((left, top, left + width, top + height))


def decode_image(path, shape: tuple[int, int, int], crop_pct: float) -> torch.Tensor:
    """One image file as uint8 ``[C, H, W]`` at the model's size (grey or RGB)."""
    channels, height, width = shape
    with Image.open(path) as img:
        img = center_crop_resize(img.convert("L" if channels == 1 else "RGB"), (height, width), crop_pct)
        array = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(array.copy()).reshape(height, width, -1).permute(2, 0, 1).contiguous()
