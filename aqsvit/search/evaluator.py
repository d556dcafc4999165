"""Measure one assignment: accuracy, drop, memory, compression, effective bits and energy.

Plain Python (no Optuna): the objective, the baselines and the benchmarks all measure through it.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from torch import nn

import torch
from spikingjelly.activation_based import functional
from torch.utils.data import Dataset

from aqsvit.data import DataBundle, iter_batches, take
from aqsvit.data.bundle import select
from aqsvit.data.prepared import prepare_split
from aqsvit.evaluation import EVAL_BATCH, accuracy, eval_batches
from aqsvit.proxy.staged import StagedResult, allowed_errors, staged_accuracy
from aqsvit.hardware import ANY, HardwareTarget
from aqsvit.quant import Assignment, LayerQuantizer, energy_pj, measure_activity, size_report
from aqsvit.search.stage_cache import StageCache
from aqsvit.settings import EvalSettings

ACTIVITY_IMAGES = 128


@dataclass(frozen=True)
class Measurement:
    """Everything reported for one assignment."""

    accuracy: float
    drop: float
    memory_bytes: int
    model_compression: float
    weight_compression: float
    effective_bits: float
    energy_nj: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ScreenOrder:
    """What :meth:`Evaluator.order_by_probe` did: the index of the probe that ordered the split
    (None: none met the constraint, or none was given; the FP order), the images it cost, and what
    it measured of each probe it tried, in order: stopped (``accuracy`` None, so infeasible on the
    whole split) or the whole split's accuracy and errors. Exact outcomes, so a search need not
    measure those probes again (:func:`aqsvit.search.run.prepare` records them as trials)."""

    probe: int | None
    images: int
    measured: list[StagedResult]


class Evaluator:
    """Evaluates assignments of one reference model on one data bundle.

    The evaluation split is prepared once (:func:`aqsvit.data.prepared.prepare_split`: decoded once,
    on the device when it fits) and every candidate's forward runs on ``device`` in batches of
    ``settings.eval_batch`` (:attr:`staged_batch` for staged evaluation, :attr:`eval_batch` otherwise).
    A staged evaluation runs each candidate from the first stage it changes (:attr:`stages`, a
    :class:`~aqsvit.search.stage_cache.StageCache` within ``settings.cache_gb``), which also
    counts the multiply-accumulates every candidate costs.

    With ``evaluate`` (a callable returning the accuracy in percent of the model it is given) that
    callable measures every accuracy instead of the test split; the staged evaluation and the
    screen, which count errors on the split, are then off."""

    def __init__(self, model: nn.Module, data: DataBundle, fp_accuracy: float | None = None,
                 split_qkv: bool = True, device: str = "cpu", settings: EvalSettings | None = None,
                 evaluate: Callable[[nn.Module], float] | None = None, target: HardwareTarget = ANY) -> None:
        self.settings = settings = settings or EvalSettings()
        self.model = model.eval().to(device)
        self.data = data
        self.device = device
        self.evaluate = evaluate
        self.target = target  # what the chip holds: quantizers, memory and the space follow it
        self.quantizer = LayerQuantizer(self.model, split_qkv=split_qkv, target=target)
        self.layers = self.quantizer.layers
        test = prepare_split(data.test, device, settings)
        sample = next(iter_batches(test, 8))[0]
        cache_bytes = int(settings.cache_gb * 2 ** 30)
        self.staged_batch, self.eval_batch = eval_batches(settings.eval_batch, self.model, sample, device, cache_bytes)
        self.stages = StageCache(self.model, self.quantizer.names, cache_bytes)
        self.stages.count_macs(sample[:2])
        # each order of the split evaluated on (held weakly: a search's orders die with it) and its cache split name
        self._orders: list[tuple[weakref.ref, str]] = []
        self._order_count = 0
        self.test = self._fp_order = hardest_first(self.model, test, device, self.eval_batch)
        self.fp_accuracy = self.accuracy(self.model) if fp_accuracy is None else fp_accuracy
        calib = take(data.calib, ACTIVITY_IMAGES)
        self.activity = measure_activity(
            self.model, self.layers, (x.to(device) for x, _ in iter_batches(calib, ACTIVITY_IMAGES)))
        self.fp_energy_nj = energy_pj(self.activity, {}) / 1e3

    @property
    def test(self) -> Dataset:
        """The evaluation split in its current order (hardest first)."""
        return self._test

    @test.setter
    def test(self, dataset: Dataset) -> None:
        """Evaluate on ``dataset`` from now on. Stored stage inputs are keyed by image range, so each
        order of the split gets its own cache split name: a front's walks, each with its screen
        order, take turns in one worker without evicting each other's inputs."""
        self._test = dataset
        self._orders = [(order, name) for order, name in self._orders if order() is not None]
        name = next((name for order, name in self._orders if order() is dataset), None)
        if name is None:  # a new order: a name never given before, so no stale entry can match it
            self._order_count += 1
            name = f"test#{self._order_count}"
            self._orders.append((weakref.ref(dataset), name))
        self._split = name

    @property
    def full_evaluation_macs(self) -> float:
        """Multiply-accumulates of one FP forward over the whole evaluation split."""
        return self.stages.full_macs * len(self.test)

    def staged(self, assignment: Assignment, delta: float, limit: int | None = None) -> StagedResult:
        """:func:`~aqsvit.proxy.staged.staged_accuracy` of ``assignment`` (applied to the model by
        the caller) on :attr:`test`, each batch from the deepest stored stage input."""
        return staged_accuracy(self.model, self.test, self.fp_accuracy, delta, self.staged_batch, self.device,
                               limit=limit, logits=self.stages.candidate(assignment, split=self._split))

    def accuracy(self, model: nn.Module) -> float:
        """Accuracy in percent of ``model`` (this evaluator's model, maybe quantized)."""
        if self.evaluate is not None:
            model.eval()
            return float(self.evaluate(model))
        self.stages.macs += self.full_evaluation_macs
        return accuracy(model, self.test, self.eval_batch, self.device)

    def cost(self, assignment: Assignment) -> Measurement:
        """Size and energy only (no forward pass); accuracy fields are NaN."""
        return self._measurement(assignment, float("nan"))

    def measure(self, assignment: Assignment) -> Measurement:
        """Apply ``assignment``, measure test accuracy, restore the FP weights."""
        with self.quantizer.applied(assignment) as model:
            acc = self.accuracy(model)
        return self._measurement(assignment, acc)

    def order_by_probe(self, probes: Sequence[Assignment], delta: float) -> ScreenOrder:
        """Reorder :attr:`test` so that a screen of its first images holds nearly every error a
        quantized candidate makes near the constraint (see :class:`ScreenOrder` for what it returns).

        The probe is the first of ``probes`` (give them cheapest first) within ``delta`` of the FP
        accuracy: a one-width model at the edge of the constraint flips the same fragile images
        that per-layer candidates near the edge flip. Each image then ranks by the better of its
        difficulty for the FP model and for the probe. On the digits default this leaves 0.05
        errors of a near-constraint candidate outside a 30% screen on average, against 1.8 with
        the FP order alone.
        """
        self.test, images, measured = self._fp_order, 0, []
        total = len(self.test)
        for index, probe in enumerate(probes):
            with self.quantizer.applied(probe) as model:
                # a first batch rejects a hopeless probe cheaply; the rank pass measures the rest
                check = staged_accuracy(model, self.test, self.fp_accuracy, delta, self.staged_batch,
                                        self.device, limit=EVAL_BATCH)
                images += check.images
                if check.accuracy is None:
                    measured.append(check)
                    continue
                ranks, errors = difficulty_ranks(model, self.test, self.device, self.eval_batch)
                images += total
            measured.append(StagedResult(100.0 * (total - errors) / total, total, errors))
            if errors > allowed_errors(total, self.fp_accuracy, delta):
                continue
            fp_ranks = torch.arange(total)  # _fp_order is sorted by FP difficulty
            self.test = reordered(self._fp_order, torch.minimum(fp_ranks, ranks))
            return ScreenOrder(index, images, measured)
        return ScreenOrder(None, images, measured)

    def _measurement(self, assignment: Assignment, acc: float) -> Measurement:
        size = size_report(self.model, self.layers, assignment, self.target)
        return Measurement(acc, self.fp_accuracy - acc, size.memory_bytes, size.model_compression,
                           size.weight_compression, size.effective_bits,
                           energy_pj(self.activity, assignment) / 1e3)


@torch.no_grad()
def difficulty_ranks(model: nn.Module, dataset: Dataset, device: str = "cpu",
                     batch_size: int = EVAL_BATCH) -> tuple[torch.Tensor, int]:
    """Each image's rank by difficulty for ``model`` (the images it gets wrong first, then by
    ascending margin, top-1 minus top-2 logit; ties by position), and how many it gets wrong."""
    model.eval()
    margins, wrong = [], []
    for x, y in iter_batches(dataset, batch_size):
        logits = model(x.to(device, non_blocking=True))
        functional.reset_net(model)
        top2 = logits.topk(2, dim=1).values
        margins.append(top2[:, 0] - top2[:, 1])
        wrong.append(logits.argmax(1) != y.to(logits.device))
    margin, is_wrong = torch.cat(margins).cpu(), torch.cat(wrong).cpu()  # one wait for the device
    order = sorted(range(len(margin)), key=lambda i: (not bool(is_wrong[i]), float(margin[i]), i))
    ranks = torch.empty(len(order), dtype=torch.long)
    ranks[torch.tensor(order)] = torch.arange(len(order))
    return ranks, int(is_wrong.sum())


def reordered(dataset: Dataset, ranks: torch.Tensor) -> Dataset:
    """``dataset`` with its items sorted by ascending ``ranks`` (ties by position)."""
    order = sorted(range(len(ranks)), key=lambda i: (int(ranks[i]), i))
    return select(dataset, order)


def hardest_first(model: nn.Module, dataset: Dataset, device: str = "cpu", batch_size: int = EVAL_BATCH) -> Dataset:
    """The evaluation split reordered by the FP model's difficulty (:func:`difficulty_ranks`).
    A quantized model's errors concentrate there, so a staged evaluation reaches its stop rule
    sooner; accuracy over the whole split does not depend on the order."""
    return reordered(dataset, difficulty_ranks(model, dataset, device, batch_size)[0])
