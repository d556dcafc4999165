"""Staged accuracy evaluation that stops as soon as a candidate can no longer meet the constraint.

The stop rule is exact, not statistical: with N evaluation images, a candidate meets
``acc >= fp_acc - delta`` only if it gets at most ``N - ceil(N * (fp_acc - delta) / 100)`` of them
wrong; once more are wrong, no remaining image can save it. So a candidate whose full accuracy is
within delta is never stopped, and a clearly bad one is stopped after a few batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from aqsvit.evaluation import batch_correct


@dataclass(frozen=True)
class StagedResult:
    """Accuracy when the evaluation ran to the end, else None; images actually evaluated."""

    accuracy: float | None
    images: int


def allowed_errors(total: int, fp_accuracy: float, delta: float) -> int:
    """Most wrong answers out of ``total`` that still meet the constraint."""
    need = math.ceil(total * (fp_accuracy - delta) / 100.0 - 1e-9)
    return total - max(need, 0)


def staged_accuracy(model: nn.Module, dataset: Dataset, fp_accuracy: float, delta: float,
                    batch_size: int = 64, device: str | torch.device = "cpu") -> StagedResult:
    """Evaluate in batches of ``batch_size``; stop once the constraint is out of reach."""
    total = len(dataset)
    budget = allowed_errors(total, fp_accuracy, delta)
    correct = seen = 0
    for c, n in batch_correct(model, dataset, batch_size, device):
        correct, seen = correct + c, seen + n
        if seen - correct > budget:
            return StagedResult(None, seen)
    return StagedResult(100.0 * correct / max(seen, 1), seen)
