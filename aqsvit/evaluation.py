"""Accuracy of a spiking model on a data split, resetting neuron state between batches."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import Dataset

from aqsvit.data import iter_batches, take

EVAL_BATCH = 256


@torch.no_grad()
def batch_correct(model: nn.Module, dataset: Dataset, batch_size: int = EVAL_BATCH,
                  device: str | torch.device = "cpu", limit: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield ``(correct, seen)`` per batch over the first ``limit`` images (all when None), so
    callers can stop early (staged evaluation)."""
    model.eval()
    if limit is not None and limit < len(dataset):
        dataset = take(dataset, limit)
    for x, y in iter_batches(dataset, batch_size):
        logits = model(x.to(device))
        functional.reset_net(model)
        yield int((logits.argmax(1).cpu() == y).sum()), len(y)


def accuracy(model: nn.Module, dataset: Dataset, batch_size: int = EVAL_BATCH,
             device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy in percent."""
    correct = seen = 0
    for c, n in batch_correct(model, dataset, batch_size, device):
        correct, seen = correct + c, seen + n
    return 100.0 * correct / max(seen, 1)
