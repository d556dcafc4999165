"""Bring images of any size and colour layout to a model's ``(C, H, W)`` input in [0, 1]."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from aqsvit.errors import AqsvitError


def to_model_input(images: np.ndarray | torch.Tensor, shape: tuple[int, int, int],
                   source: str) -> torch.Tensor:
    """Convert ``images`` ([N, H, W], [N, H, W, C] or [N, C, H, W]; uint8 or float) to float
    ``[N, *shape]``: grey and RGB are converted into each other, sizes are resized (antialiased)."""
    x = torch.as_tensor(np.array(images))
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.is_floating_point():
        x = x.float()
    else:
        x = x.float()
        x = x / x.max().clamp(min=1)
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


def compact(x: torch.Tensor, source_dtype: np.dtype) -> torch.Tensor:
    """``x`` from :func:`to_model_input` as uint8 when it came from 8-bit images unchanged (every
    value k / 255): 4x smaller, and ``/ 255`` gives back exactly the same floats."""
    if source_dtype != np.uint8:
        return x
    codes = (x * 255.0).round().to(torch.uint8)
    return codes if torch.equal(codes.float() / 255.0, x) else x
