"""Pin one worker of a multi-worker study to its device and its share of the CPU cores."""
from __future__ import annotations

import logging
import os

import torch

from aqsvit.errors import invalid

log = logging.getLogger(__name__)
_VISIBLE_AT_START = os.environ.get("CUDA_VISIBLE_DEVICES")


def _visible_gpus() -> list[str]:
    if _VISIBLE_AT_START is not None:
        return [g for g in _VISIBLE_AT_START.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def pin_worker(device: str, worker: int = 0, workers: int = 1) -> str:
    """Choose and configure this worker's device; returns the torch device string.

    ``auto`` or ``cuda``: GPU ``worker % n_gpus`` of the GPUs visible when the process started,
    made the only visible one (``CUDA_VISIBLE_DEVICES``) when CUDA is not yet initialised, else
    selected with ``torch.cuda.set_device`` (a joblib/loky process reused from an earlier job).
    ``cpu`` (or no GPU): torch threads = cores / workers, set on every call, reused process or not.
    """
    if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
        raise invalid("device", device, "auto, cpu, cuda, cuda:<index>")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, workers)))
    if device == "cpu" or device.startswith("cuda:"):
        return device
    gpus = _visible_gpus()
    if not gpus:
        if device == "cuda":
            raise invalid("device", device, "auto or cpu (no GPU is visible)")
        return "cpu"
    physical = gpus[worker % len(gpus)]
    if not torch.cuda.is_initialized():
        os.environ["CUDA_VISIBLE_DEVICES"] = physical
        return "cuda:0"
    index = gpus.index(physical) if torch.cuda.device_count() == len(gpus) else 0
    torch.cuda.set_device(index)
    log.info("worker %d: CUDA already initialised in this process; using cuda:%d", worker, index)
    return f"cuda:{index}"
