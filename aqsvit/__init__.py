"""aqsvit: automated per-layer quantization search for spiking vision transformers."""
from __future__ import annotations

import logging

# spikingjelly imports torch's Triton probe, which logs a harmless "Triton not available"
# warning on CPU-only machines. Silence that one logger before anything imports spikingjelly.
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

__version__ = "0.1.0"


def __getattr__(name: str):
    """``aqsvit.quantize`` and ``aqsvit.QuantizationResult`` (imported on first use: the CLI's
    start-up stays light)."""
    if name in ("quantize", "QuantizationResult"):
        from aqsvit import api
        return getattr(api, name)
    raise AttributeError(f"module 'aqsvit' has no attribute {name!r}")


__all__ = ["QuantizationResult", "quantize"]
