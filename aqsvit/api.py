"""Quantize your own model from Python: ``aqsvit.quantize(model, calibration, evaluation)``.

The model is taken as it is (trained, any ``nn.Module`` mapping a batch to class scores
``[N, classes]``); the search is the CLI's (:func:`aqsvit.search.run.prepare`, ``run`` and
``summarize``: the same samplers, drift pruner, screen and resumable Optuna study).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import optuna
import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from aqsvit.hardware import TARGETS
from aqsvit.data import DataBundle, iter_batches
from aqsvit.errors import AqsvitError, check_number
from aqsvit.models import ModelSpec
from aqsvit.models.target import check_classifier
from aqsvit.quant import LayerQuantizer
from aqsvit.search.evaluator import Evaluator, Measurement
from aqsvit.search.front import front, pick
from aqsvit.search.run import Search, run, summarize
from aqsvit.search.setup import assemble
from aqsvit.search.vocabulary import COST_ATTRS, DROP_ATTR
from aqsvit.settings import DEFAULT_URL, EVAL_KEYS, EvalSettings, QuantSettings, SearchSettings

Data = Union[tuple[torch.Tensor, torch.Tensor], Dataset, DataLoader]


@dataclass
class QuantizationResult:
    """What :func:`quantize` found: the per-layer assignment and its measured figures."""

    assignment: dict[str, tuple[str, int]]   # layer name -> (scheme, bits); absent layers stay FP32
    measurement: Measurement
    fp_accuracy: float
    study: optuna.Study
    search: Search

    @property
    def accuracy(self) -> float:
        return self.measurement.accuracy

    @property
    def drop(self) -> float:
        return self.measurement.drop

    @property
    def memory_bytes(self) -> int:
        return self.measurement.memory_bytes

    @property
    def compression(self) -> float:
        """Whole-model compression (weights and other state) against FP32."""
        return self.measurement.model_compression

    @property
    def weight_compression(self) -> float:
        return self.measurement.weight_compression

    @property
    def effective_bits(self) -> float:
        return self.measurement.effective_bits

    @property
    def front(self) -> list[QuantizationResult]:
        """The study's measured front, least memory first: every assignment measured on the whole
        evaluation split that no other beats on both accuracy and memory (read from the stored
        trials; nothing is evaluated). A search with ``front=[0.5, 1, 2, 3]`` walked for each."""
        return [self._stored(t) for t in front(self.study.get_trials(deepcopy=False))]

    def pick(self, delta: float) -> QuantizationResult:
        """The smallest assignment the study measured within ``delta`` accuracy points (ties: the
        more accurate), read from the stored trials without evaluating anything; ``export`` and
        ``apply`` take it as they take the search's own result. A delta the search walked (its
        ``front``, or its ``delta``) is as small as a search for it alone finds; for another, run
        :func:`quantize` again with it added to ``front`` (same storage and study): the study keeps
        its walks and walks only the new delta."""
        check_number("delta", delta, 0, 100, allowed="numbers 0..100 (accuracy points)")
        chosen = pick(self.study.get_trials(deepcopy=False), delta)
        if chosen is None:
            raise AqsvitError(f"delta: got {delta}; study {self.study.study_name!r} holds no assignment measured on "
                              f"the whole split within it; allowed: a larger delta, or quantize(..., front=[{delta:g}, "
                              "...]) to search for it")
        return self._stored(chosen)

    def _stored(self, trial: optuna.trial.FrozenTrial) -> QuantizationResult:
        """The result ``trial`` holds, its figures as the search recorded them."""
        space = self.search.space
        figures = {name: trial.user_attrs[name] for name in COST_ATTRS}
        measurement = Measurement(accuracy=trial.values[0], drop=float(trial.user_attrs[DROP_ATTR]), **figures)
        return QuantizationResult(dict(space.assignment(space.choices_from_params(trial.params))), measurement,
                                  self.fp_accuracy, self.study, self.search)

    def export(self, path: str | Path) -> Path:
        """Write the quantized model to ``path`` as its hardware target takes it: the packed model
        (``.aqsv``, target ``any``; read back with ``aqsvit.report.export.load_packed(path, model)``)
        or the chip export (a NumPy archive; ``aqsvit.report.chip_export.load_for_target(path, model)``)."""
        from aqsvit.report.chip_export import save_for_target
        from aqsvit.report.export import save_packed
        evaluator = self.search.evaluator
        split_qkv = evaluator.quantizer.split_qkv
        if evaluator.target.name == "any":
            return save_packed(path, evaluator.model, self.assignment, split_qkv=split_qkv)
        return save_for_target(path, evaluator.model, self.assignment, evaluator.target, split_qkv=split_qkv)

    def apply(self, model: nn.Module) -> nn.Module:
        """Quantize ``model``'s weights in place (the searched model or one of its architecture)."""
        evaluator = self.search.evaluator
        quantizer = LayerQuantizer(model, split_qkv=evaluator.quantizer.split_qkv, target=evaluator.target)
        modules = dict(model.named_modules())
        with torch.no_grad():
            for layer in quantizer.layers:
                scheme, bits = self.assignment.get(layer.name, ("fp32", 32))
                if scheme != "fp32":
                    weight = modules[layer.module_name].weight
                    weight[layer.out_start:layer.out_stop] = quantizer.quantized_weight(layer, scheme, bits)
        return model


def as_dataset(data: Data, field: str) -> TensorDataset:
    """Images and labels in memory from tensors ``(x, y)``, a ``Dataset`` or a ``DataLoader``."""
    if isinstance(data, TensorDataset) and len(data.tensors) == 2:
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
    elif isinstance(data, (Dataset, DataLoader)):
        batches = list(data if isinstance(data, DataLoader) else iter_batches(data, 256))
        if not batches or not all(isinstance(b, (tuple, list)) and len(b) >= 2 for b in batches):
            raise AqsvitError(f"{field}: got a {type(data).__name__} without (image, label) items; "
                              "allowed: (images, labels) tensors, a Dataset or a DataLoader of (image, label)")
        x, y = torch.cat([b[0] for b in batches]), torch.cat([torch.as_tensor(b[1]) for b in batches])
    else:
        raise AqsvitError(f"{field}: got {type(data).__name__}; allowed: (images, labels) tensors, "
                          "a Dataset or a DataLoader")
    if len(x) == 0 or len(x) != len(y):
        raise AqsvitError(f"{field}: got {len(x)} images and {len(y)} labels; allowed: as many labels as images, >= 1")
    return TensorDataset(x.float(), y.long())


def _digest(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def quantize(model: nn.Module, calibration: Data, evaluation: Data | None = None, *,
             evaluate: Callable[[nn.Module], float] | None = None, delta: float = SearchSettings.delta,
             sampler: str = SearchSettings.sampler, storage: str = DEFAULT_URL,
             study_name: str | None = None, split_qkv: bool = QuantSettings.split_qkv, device: str = "cpu",
             progress: bool = False, **settings: Any) -> QuantizationResult:
    """Search a per-layer weight quantization of ``model`` within ``delta`` accuracy points.

    ``calibration`` feeds the drift proxy and the pruner; ``evaluation`` measures accuracy (a split
    the calibration images are not in), or ``evaluate(model) -> accuracy in percent`` does (then
    the staged evaluation and the screen are off). Data: ``(images, labels)`` tensors, a
    ``Dataset`` or a ``DataLoader`` (read into memory once). ``settings`` are every further
    setting of a search, named as the CLI's keys without their group (:mod:`aqsvit.settings`):
    :class:`~aqsvit.settings.SearchSettings` fields (``target`` such as ``"loihi2"``, ``front`` such as
    ``[0.5, 1, 2, 3]`` (then :meth:`QuantizationResult.pick` answers each; run again with more deltas, the
    study walks only those), ``granularity``, ``schemes``, ``bits``,
    ``sampler_options`` such as ``{"width": 2}`` for beam, ``n_trials``, ``screen``, ``start``, ...) and
    :class:`~aqsvit.settings.EvalSettings` ones (``eval_batch``, ``eval_memory_gb``, ``cache_gb``,
    ``loader_workers``); all are checked before any work. The study ``study_name`` (default
    ``<ModelClass>-<sampler>``) in ``storage`` resumes when run again with the same settings;
    ``force_new_study=True`` starts it over. Bad input raises :class:`~aqsvit.errors.AqsvitError`.
    A model without a ``spec`` attribute gets one (its class name and input shape), which the
    search and the export record.
    """
    if not isinstance(model, nn.Module):
        raise AqsvitError(f"model: got a {type(model).__name__}; allowed: an nn.Module")
    if (evaluation is None) == (evaluate is None):
        raise AqsvitError("evaluation: give exactly one of evaluation (data) and evaluate (a callable)")
    if evaluate is not None and not callable(evaluate):
        raise AqsvitError(f"evaluate: got a {type(evaluate).__name__}; allowed: a callable(model) -> accuracy")
    search_settings, eval_settings = _settings(type(model).__name__, sampler, delta, storage, study_name,
                                               evaluate is not None, settings)
    calib = as_dataset(calibration, "calibration")
    test = as_dataset(evaluation, "evaluation") if evaluation is not None else calib
    shape = tuple(calib.tensors[0].shape[1:])
    model = model.to(device).eval()
    with torch.no_grad():
        classes = int(model(calib.tensors[0][:2].to(device)).shape[-1])
    functional.reset_net(model)
    check_classifier(model, shape, classes, type(model).__name__, field="model")
    name = type(model).__name__
    if getattr(model, "spec", None) is None:
        model.spec = ModelSpec(name, {}, None, shape)
    fingerprint = _digest(*calib.tensors, *test.tensors)
    data = DataBundle(f"data-{fingerprint[:8]}", calib, calib, test, classes, shape, fingerprint)
    evaluator = Evaluator(model, data, split_qkv=split_qkv, device=device, settings=eval_settings, evaluate=evaluate,
                          target=TARGETS[search_settings.target])
    weights = _digest(*(t for t in model.state_dict().values() if t.is_floating_point()))
    key = f"{weights}-{fingerprint}" + ("-callable" if evaluate is not None else "")
    logging.getLogger("optuna").setLevel(logging.WARNING)
    search = assemble(evaluator, search_settings, key)
    run(search, progress=progress)
    summary = summarize(search)
    if summary.choices is None:
        raise AqsvitError(f"delta: no assignment keeps the accuracy within {delta} points of "
                          f"{evaluator.fp_accuracy:.2f}% (study {search_settings.study_name!r}); "
                          "allowed: a larger delta")
    assignment = dict(search.space.assignment(summary.choices))
    return QuantizationResult(assignment, summary.measurement, evaluator.fp_accuracy, search.study, search)


def _settings(name: str, sampler: str, delta: float, storage: str, study_name: str | None, callable_accuracy: bool,
              settings: dict[str, Any]) -> tuple[SearchSettings, EvalSettings]:
    """:func:`quantize`'s settings, checked once: a search's own and its evaluation's (a callable
    accuracy turns the staged evaluation and the screen off: they count errors on a split)."""
    search_fields = {f for f in SearchSettings.__dataclass_fields__ if SearchSettings.__dataclass_fields__[f].init}
    allowed = sorted((search_fields - {"storage_url", "sampler", "delta", "study_name"}) | set(EVAL_KEYS))
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise AqsvitError(f"{unknown[0]}: not a setting; allowed: {', '.join(allowed)}")
    search = {k: v for k, v in settings.items() if k in search_fields}
    if callable_accuracy:
        search.update(staged=False, screen=1.0)
    run = SearchSettings(sampler=sampler, delta=delta, storage_url=storage,
                         study_name=study_name or f"{name}-{sampler}", **search)
    return run, EvalSettings(**{k: v for k, v in settings.items() if k in EVAL_KEYS}, workers=run.workers)
