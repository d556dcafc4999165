"""Staged accuracy evaluation: stop as soon as a candidate can no longer meet the constraint, and
optionally decide it on a screen (the first, hardest images) instead of the whole split.

The stop rule is exact, not statistical: with N evaluation images, a candidate meets
``acc >= fp_acc - delta`` only if it gets at most ``N - ceil(N * (fp_acc - delta) / 100)`` of them
wrong; once more are wrong, no remaining image can save it. So a candidate whose full accuracy is
within delta is never stopped, and a clearly bad one is stopped after a few batches.

A *screen* (``limit`` images) ends the evaluation early also when the candidate is still within the
error budget there: the errors outside the screen are not counted, so its accuracy is an upper bound
(``screened=True``). On a hardest-first split (see :func:`aqsvit.search.evaluator.hardest_first`)
the screen holds most of the errors a quantized model makes; whoever accepts screened candidates
must measure the one it finally keeps on the whole split (the stepwise samplers do).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from aqsvit.evaluation import Logits, batch_correct


@dataclass(frozen=True)
class StagedResult:
    """Accuracy over the whole split (None once stopped), images evaluated, errors seen.

    ``screened``: the evaluation ended at the screen within the budget; ``accuracy`` then counts
    only the errors seen (an upper bound of the whole split's accuracy).
    """

    accuracy: float | None
    images: int
    errors: int = 0
    screened: bool = False


def allowed_errors(total: int, fp_accuracy: float, delta: float) -> int:
    """Most wrong answers out of ``total`` that still meet the constraint."""
    need = math.ceil(total * (fp_accuracy - delta) / 100.0 - 1e-9)
    return total - max(need, 0)


def screen_size(total: int, screen: float) -> int:
    """Images in a screen of fraction ``screen`` of ``total`` (``total`` when ``screen`` >= 1)."""
    return total if screen >= 1 else max(1, min(total, math.ceil(total * screen)))


def staged_accuracy(model: nn.Module, dataset: Dataset, fp_accuracy: float, delta: float,
                    batch_size: int = 64, device: str | torch.device = "cpu",
                    limit: int | None = None, logits: Logits | None = None) -> StagedResult:
    """Evaluate in batches of ``batch_size``; stop once the constraint is out of reach, or after
    ``limit`` images (a screen) when it is still within reach (``logits``: see
    :func:`aqsvit.evaluation.batch_correct`)."""
    total = len(dataset)
    limit = total if limit is None else min(limit, total)
    budget = allowed_errors(total, fp_accuracy, delta)
    correct, seen = 0, 0
    for c, n in batch_correct(model, dataset, batch_size, device, limit=limit, logits=logits):
        correct, seen = correct + c, seen + n
        # the count is read (a wait for the device) only once the budget could be exceeded
        if seen > budget and seen - int(correct) > budget:
            return StagedResult(None, seen, seen - int(correct))
    errors = seen - int(correct)
    return StagedResult(100.0 * (total - errors) / max(total, 1), seen, errors, screened=seen < total)
