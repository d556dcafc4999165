"""Bring images of any size and colour layout to a model's ``(C, H, W)`` input in [0, 1].

Values, one rule for every source: floats must already lie in [0, 1]; ``uint8`` and other integer
arrays within 0..255 are 8-bit values (divided by 255); ``uint16`` arrays are 16-bit values
(divided by 65535); booleans are 0 or 1. Anything else (floats in 0..255, negative integers) is
refused in one line instead of being clipped: a clipped image set silently loses its accuracy."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from aqsvit.errors import AqsvitError


def to_model_input(images: np.ndarray | torch.Tensor, shape: tuple[int, int, int],
                   source: str) -> torch.Tensor:
    """Convert ``images`` ([N, H, W], [N, H, W, C] or [N, C, H, W]; uint8 or float) to float
    ``[N, *shape]``: grey and RGB are converted into each other, sizes are resized (antialiased)."""
    x = torch.as_tensor(np.array(images)).float() / value_scale(np.asarray(images), source)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise AqsvitError(
            f"{source}: images have shape {tuple(np.asarray(images).shape)}; allowed: "
            "[N, H, W], [N, H, W, 1|3] or [N, 1|3, H, W]")
    channels, height, width = shape
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, channels, -1, -1)
    if tuple(x.shape[2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True,
                          align_corners=False)
    return x.clamp(0, 1).contiguous()


def value_scale(images: np.ndarray, source: str) -> float:
    """What ``images`` are divided by to lie in [0, 1] (the module's rule), or the one-line refusal."""
    if images.size == 0 or images.dtype.kind == "b":
        return 1.0
    lo, hi = images.min().item(), images.max().item()
    if images.dtype.kind == "f":
        scale, allowed = 1.0, "floats in [0, 1] (divide 8-bit values by 255 first)"
    elif images.dtype == np.uint16 and hi > 255:
        scale, allowed = 65535.0, "uint16 values 0..65535"
    else:
        scale, allowed = 255.0, "integers 0..255 (8-bit values) or uint16 0..65535"
    if lo < 0 or hi > scale:
        raise AqsvitError(f"{source}: images hold values from {lo:g} to {hi:g} ({images.dtype}); allowed: {allowed}")
    return scale


def compact(x: torch.Tensor, source_dtype: np.dtype) -> torch.Tensor:
    """``x`` from :func:`to_model_input` as uint8 when it came from 8-bit images unchanged (every
    value k / 255): 4x smaller, and ``/ 255`` gives back exactly the same floats."""
    if source_dtype != np.uint8:
        return x
    codes = (x * 255.0).round().to(torch.uint8)
    return codes if torch.equal(codes.float() / 255.0, x) else x
