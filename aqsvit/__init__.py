"""aqsvit: automated per-layer quantization search for spiking vision transformers."""
from __future__ import annotations

import logging

# spikingjelly imports torch's Triton probe, which logs a harmless "Triton not available"
# warning on CPU-only machines. Silence that one logger before anything imports spikingjelly.
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

__version__ = "0.1.0"
