"""Accuracy of a spiking model on a data split, resetting neuron state between batches."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import Dataset

from aqsvit.data import iter_batches, take

EVAL_BATCH = 256    # whole-split evaluation on the CPU (search.eval_batch=auto)
STAGED_BATCH = 64   # staged evaluation on the CPU: a stop may come after any batch


Logits = Callable[[torch.Tensor, int], torch.Tensor]  # (batch of model input, index of its first image) -> logits


@torch.no_grad()
def batch_correct(model: nn.Module, dataset: Dataset, batch_size: int = EVAL_BATCH,
                  device: str | torch.device = "cpu", limit: int | None = None,
                  logits: Logits | None = None) -> Iterator[tuple[torch.Tensor, int]]:
    """Yield ``(correct, seen)`` per batch over the first ``limit`` images (all when None), so
    callers can stop early (staged evaluation). ``correct`` is a count on the device: reading it
    (``int``) waits for the device, so a caller does it only when it must decide. ``logits``
    computes a batch's logits instead of ``model(x)`` (a stage cache's, which must equal it)."""
    model.eval()
    if limit is not None and limit < len(dataset):
        dataset = take(dataset, limit)
    start = 0
    for x, y in iter_batches(dataset, batch_size):
        x = x.to(device, non_blocking=True)
        out = model(x) if logits is None else logits(x, start)
        functional.reset_net(model)
        start += len(y)
        yield (out.argmax(1) == y.to(out.device, non_blocking=True)).sum(), len(y)


def accuracy(model: nn.Module, dataset: Dataset, batch_size: int = EVAL_BATCH,
             device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy in percent (one wait for the device, at the end)."""
    correct, seen = 0, 0
    for c, n in batch_correct(model, dataset, batch_size, device):
        correct, seen = correct + c, seen + n
    return 100.0 * int(correct) / max(seen, 1)


@torch.no_grad()
def auto_batch(model: nn.Module, sample: torch.Tensor, device: str | torch.device, largest: int = 1024,
               reserve_bytes: int = 0) -> int:
    """On a GPU: the largest power of two up to ``largest`` images whose forward fits in half the
    free memory left after ``reserve_bytes`` (what will be allocated later: the stage cache), from
    the peak memory of one forward on ``sample`` (a few images of model input)."""
    device = torch.device(device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    model.eval()
    model(sample.to(device))
    functional.reset_net(model)
    torch.cuda.synchronize(device)
    per_image = max(1, (torch.cuda.max_memory_allocated(device) - base) / len(sample))
    free, _ = torch.cuda.mem_get_info(device)
    fits = max(1.0, min(float(largest), 0.5 * max(free - reserve_bytes, 0) / per_image))
    return 2 ** int(math.floor(math.log2(fits)))


def eval_batches(batch: int | str, model: nn.Module, sample: torch.Tensor,
                 device: str | torch.device, reserve_bytes: int = 0) -> tuple[int, int]:
    """(staged, whole-split) evaluation batch sizes for ``search.eval_batch``: an integer for both;
    ``"auto"``: 64 / 256 on the CPU, :func:`auto_batch` on a GPU (``sample``: a few images of input;
    ``reserve_bytes``: device memory kept for the stage cache)."""
    if batch != "auto":
        return int(batch), int(batch)
    if torch.device(device).type == "cuda":
        size = auto_batch(model, sample, device, reserve_bytes=reserve_bytes)
        return size, size
    return STAGED_BATCH, EVAL_BATCH
