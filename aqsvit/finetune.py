"""Quantization-aware fine-tuning of an assignment, and picking the smallest one that it rescues.

:func:`finetune` trains a copy of the reference model with its weights fake-quantized
(:func:`aqsvit.quant.fake_quantized`: straight-through gradients, scales re-estimated each step;
spikingjelly's surrogate gradients for the spikes) and measures the quantized model before and
after, exactly as the search does. :func:`finetune_front` lets a search aim lower: it fine-tunes
the smallest few feasible assignments of a study searched with a loose Δ and keeps the smallest
that meets the final Δ after fine-tuning.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from aqsvit.errors import check_number
from aqsvit.quant import Assignment, fake_quantized
from aqsvit.search.evaluator import Evaluator, Measurement
from aqsvit.search.trials import is_feasible
from aqsvit.settings import FinetuneOptions, SearchSettings, TrainSettings
from aqsvit.search.vocabulary import SCREENED_ATTR
from aqsvit.training import train


@dataclass(frozen=True)
class FinetuneSettings:
    """How long and how hard to fine-tune (``finetune.epochs``, ``finetune.lr``, ``train.batch_size``,
    ``seed``; their defaults are the schema's, :mod:`aqsvit.settings`), checked when built."""

    epochs: int = FinetuneOptions.epochs
    lr: float = FinetuneOptions.lr
    batch_size: int = TrainSettings.batch_size
    seed: int = SearchSettings.seed

    def __post_init__(self) -> None:
        """One line naming the config field for a bad value: the schema's own checks."""
        FinetuneOptions(epochs=self.epochs, lr=self.lr)
        TrainSettings(batch_size=self.batch_size)


@dataclass(frozen=True)
class Finetuned:
    """One fine-tuned assignment: the model holding the new latent FP weights, and its figures."""

    assignment: dict[str, tuple[str, int]]
    before: Measurement
    after: Measurement
    seconds: float
    evaluator: Evaluator  # over the fine-tuned model: export with ``save_packed(evaluator.model, ...)``


def finetune(reference: Evaluator, assignment: Assignment, settings: FinetuneSettings = FinetuneSettings(),
             progress: bool = True) -> Finetuned:
    """Fine-tune a copy of ``reference.model`` under ``assignment`` on ``reference.data.train``.

    Accuracy before and after is measured on the same evaluation split, and the drop against the
    reference's FP accuracy; the reference model is left untouched."""
    assignment = dict(assignment)
    before = reference.measure(assignment)
    started = time.perf_counter()
    model = copy.deepcopy(reference.model)
    with fake_quantized(model, assignment, split_qkv=reference.quantizer.split_qkv, target=reference.target):
        train(model, reference.data, epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
              seed=settings.seed, device=reference.device, progress=progress)
    seconds = time.perf_counter() - started
    tuned = Evaluator(model, reference.data, reference.fp_accuracy, split_qkv=reference.quantizer.split_qkv,
                      device=reference.device, settings=reference.settings,  # the same prepared split
                      target=reference.target)
    return Finetuned(assignment, before, tuned.measure(assignment), seconds, tuned)


def front_candidates(study: optuna.Study, count: int, fp_accuracy: float, delta: float) -> list[FrozenTrial]:
    """What to fine-tune, smallest memory first: the ``count`` smallest assignments of the feasible
    Pareto front (accuracy vs memory) that are smaller than the smallest one already within ``delta``
    without fine-tuning, then that one (it is on the front too), so fine-tuning never ends with a
    larger assignment than the study already holds within ``delta``.

    Each assignment counts once, with its whole-split measurement where it has one: greedy and beam
    verify a screened result in a second trial, and the screened twin's accuracy is an upper bound."""
    front, best = [], float("-inf")
    for t in sorted(_measured_once(study), key=lambda t: (t.values[1], -t.values[0], t.number)):
        if is_feasible(t) and t.values[0] > best:
            front.append(t)
            best = t.values[0]
    anchor = next((t for t in front if not t.user_attrs.get(SCREENED_ATTR) and fp_accuracy - t.values[0] <= delta), None)
    smaller = [t for t in front if anchor is None or t.values[1] < anchor.values[1]][:count]
    return smaller + ([anchor] if anchor is not None else [])


def _measured_once(study: optuna.Study) -> list[FrozenTrial]:
    """One COMPLETE trial per assignment: a whole-split one over a screened one, else the first."""
    kept: dict[tuple, FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = tuple(sorted(t.params.items()))
        if key not in kept or (kept[key].user_attrs.get(SCREENED_ATTR) and not t.user_attrs.get(SCREENED_ATTR)):
            kept[key] = t
    return list(kept.values())


def finetune_front(reference: Evaluator, assignments: Sequence[Mapping[str, tuple[str, int]]], delta: float,
                   settings: FinetuneSettings = FinetuneSettings(),
                   progress: bool = True) -> tuple[Finetuned | None, list[Finetuned]]:
    """Fine-tune each assignment (smallest first); the first whose drop after fine-tuning is within
    ``delta`` is the result (None if none is). Returns it and every fine-tuned candidate."""
    check_number("finetune.delta", delta, 0)
    tried = []
    for assignment in sorted(assignments, key=lambda a: reference.cost(a).memory_bytes):
        result = finetune(reference, assignment, settings, progress)
        tried.append(result)
        if result.after.drop <= delta:
            return result, tried
    return None, tried
