"""Measure one assignment: accuracy, drop, memory, compression, effective bits and energy.

Plain Python (no Optuna): the objective, the baselines and the benchmarks all measure through it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from aqsvit.data import DataBundle, iter_batches, take
from aqsvit.evaluation import accuracy
from aqsvit.quant import Assignment, LayerQuantizer, energy_pj, measure_activity, size_report

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


class Evaluator:
    """Evaluates assignments of one reference model on one data bundle."""

    def __init__(self, model: nn.Module, data: DataBundle, fp_accuracy: float | None = None,
                 split_qkv: bool = True, device: str = "cpu") -> None:
        self.model = model.eval().to(device)
        self.data = data
        self.device = device
        self.quantizer = LayerQuantizer(self.model, split_qkv=split_qkv)
        self.layers = self.quantizer.layers
        self.fp_accuracy = accuracy(self.model, data.test, device=device) if fp_accuracy is None else fp_accuracy
        calib = take(data.calib, ACTIVITY_IMAGES)
        self.activity = measure_activity(
            self.model, self.layers, (x.to(device) for x, _ in iter_batches(calib, ACTIVITY_IMAGES)))
        self.fp_energy_nj = energy_pj(self.activity, {}) / 1e3

    def cost(self, assignment: Assignment) -> Measurement:
        """Size and energy only (no forward pass); accuracy fields are NaN."""
        return self._measurement(assignment, float("nan"))

    def measure(self, assignment: Assignment) -> Measurement:
        """Apply ``assignment``, measure test accuracy, restore the FP weights."""
        with self.quantizer.applied(assignment) as model:
            acc = accuracy(model, self.data.test, device=self.device)
        return self._measurement(assignment, acc)

    def _measurement(self, assignment: Assignment, acc: float) -> Measurement:
        size = size_report(self.model, self.layers, assignment)
        return Measurement(acc, self.fp_accuracy - acc, size.memory_bytes, size.model_compression,
                           size.weight_compression, size.effective_bits,
                           energy_pj(self.activity, assignment) / 1e3)
