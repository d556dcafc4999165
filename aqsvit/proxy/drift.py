"""Membrane-potential drift of a quantized model against the full-precision reference.

For each LIF layer l: ``d_l = ||V_q - V_fp||_2 / ||V_fp||_2`` over all timesteps, neurons and
calibration images seen so far; the drift is the mean over layers. All definitions are computed
from the same calibration forward, batch by batch, so a pruner can stop after any batch:

- ``v``: end-to-end relative potential drift (``d_l`` above, mean over layers);
- ``v_max``: the worst layer's relative drift;
- ``spike``: fraction of spikes that differ, mean over layers;
- ``logit``: relative L2 drift of the output logits, ``||z_q - z_fp|| / ||z_fp||`` (the default:
  the best Spearman against the accuracy drop at 64 calibration images, benchmarks/results/proxy.md);
- ``kl``: KL(FP || quantized) of the output class distributions;
- ``flip``: paired accuracy-drop estimate in points on the labelled calibration images
  (FP right & quantized wrong, minus the reverse);
- ``local``: layer-local potential drift, each weight layer fed the FP model's input, so one
  layer's damage is measured without the cascade through later layers (one more forward).

Every definition is exactly 0 when nothing is quantized. A model without spiking neurons has no
potentials: ``v``, ``v_max``, ``spike`` and ``local`` then fall back to the logit drift.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aqsvit.proxy.capture import capture
from aqsvit.proxy.reference import FPReference
from aqsvit.registry import Registry



@dataclass(frozen=True)
class DriftTotals:
    """What a calibration pass has accumulated after some batches; every definition reads it."""

    per_layer: dict[str, float]       # relative potential drift per LIF layer
    spike_rates: dict[str, float]     # fraction of differing spikes per LIF layer
    logit: float                      # relative L2 drift of the logits
    kl_sum: float
    lost: int
    gained: int
    seen: int
    local_layers: dict[str, float] | None = None  # with layer inputs fed from the FP model

    def mean_layer(self, values: dict[str, float] | None) -> float:
        """Mean over layers; the logit drift for a model without spiking neurons."""
        return sum(values.values()) / len(values) if values else self.logit


DEFINITIONS: Registry[Callable[[DriftTotals], float]] = Registry("pruner.definition")


def register_definition(name: str, *, layer_inputs: bool = False) -> Callable:
    """Register a drift definition ``fn(totals) -> float`` (0 when nothing is quantized);
    ``layer_inputs``: it needs the extra forward that feeds each layer the FP model's input."""
    return DEFINITIONS.register(name, layer_inputs=layer_inputs)


def needs_layer_inputs(definition: str) -> bool:
    return bool(DEFINITIONS.meta(definition)["layer_inputs"])


register_definition("logit")(lambda t: t.logit)
register_definition("v")(lambda t: t.mean_layer(t.per_layer))
register_definition("v_max")(lambda t: max(t.per_layer.values(), default=t.logit))
register_definition("spike")(lambda t: t.mean_layer(t.spike_rates))
register_definition("kl")(lambda t: t.kl_sum / t.seen)
register_definition("flip")(lambda t: 100.0 * (t.lost - t.gained) / t.seen)
register_definition("local", layer_inputs=True)(lambda t: t.mean_layer(t.local_layers))


@dataclass(frozen=True)
class DriftStep:
    """Running drift after ``images`` calibration images (``step`` batches)."""

    step: int
    images: int
    values: dict[str, float]
    per_layer: dict[str, float]
    lost: int = 0     # calibration images the FP model gets right and the quantized one wrong
    gained: int = 0   # the reverse


class _Accumulator:
    def __init__(self) -> None:
        self.diff: dict[str, float] = {}
        self.norm: dict[str, float] = {}

    @staticmethod
    def terms(q: dict[str, torch.Tensor], fp: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """This batch's squared difference and squared norm per layer (sums on the device)."""
        return [t for name, v_fp in fp.items() for t in (((q[name] - v_fp) ** 2).sum(), (v_fp ** 2).sum())]

    def add(self, names, values: list[float]) -> None:
        for name, diff, norm in zip(names, values[0::2], values[1::2]):
            self.diff[name] = self.diff.get(name, 0.0) + diff
            self.norm[name] = self.norm.get(name, 0.0) + norm

    def per_layer(self) -> dict[str, float]:
        return {n: (self.diff[n] / self.norm[n]) ** 0.5 if self.norm[n] > 0 else 0.0 for n in self.diff}


def summed_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of the class distributions the two logit batches give, summed over the batch
    (a tensor on their device: nothing waits for it)."""
    log_p, log_q = F.log_softmax(p_logits, 1), F.log_softmax(q_logits, 1)
    return (log_p.exp() * (log_p - log_q)).sum()


def _read(terms: list[torch.Tensor]) -> list[float]:
    """Every per-batch sum at once: one wait for the device per calibration step. float64 holds each
    float32 sum and each count exactly, so the running sums equal adding them one by one."""
    return torch.stack([t.double() for t in terms]).tolist()


def drift_steps(model: nn.Module, reference: FPReference, local: bool = False,
                forward: Callable[[torch.Tensor, int], torch.Tensor] | None = None) -> Iterator[DriftStep]:
    """Yield the running drift of ``model`` (already quantized) after each calibration batch.

    ``forward``: a stage cache's candidate forward over the calibration batches
    (:class:`aqsvit.search.stage_cache.CandidateForward`); the neurons of the stages it skips
    did not run, and their sums come from the entry it started from (the same values: the layers
    before that stage are the same). Not with ``local``, which feeds every layer."""
    v_acc, local_acc = _Accumulator(), _Accumulator()
    mismatch: dict[str, float] = {}
    counts: dict[str, int] = {}
    kl_sum = logit_diff = logit_norm = 0.0
    lost = gained = 0
    seen = 0
    cached = forward is not None and not local
    for step, x in enumerate(reference.images):
        cap = capture(model, x, forward=(lambda batch: forward(batch, seen)) if cached else None)
        fp_v, fp_spikes, fp_logits = reference.v[step], reference.spikes[step], reference.logits[step]
        neurons = {}  # per neuron: squared difference and squared norm of potentials, differing spikes
        for name, v_fp in fp_v.items():
            if name in cap.v:
                neurons[name] = (((cap.v[name] - v_fp) ** 2).sum(), (v_fp ** 2).sum(),
                                 (cap.spikes[name] != fp_spikes[name]).sum())
            else:  # a stage the cached forward skipped
                neurons[name] = forward.payload[name]
        if cached:
            forward.attach(neurons)
        terms = [t for diff, norm, _ in neurons.values() for t in (diff, norm)] + [n[2] for n in neurons.values()]
        y = reference.labels[step]
        fp_right = fp_logits.argmax(1) == y
        q_right = cap.logits.argmax(1) == y
        terms += [summed_kl(fp_logits, cap.logits), ((cap.logits - fp_logits) ** 2).sum(),
                  (fp_logits ** 2).sum(), (fp_right & ~q_right).sum(), (~fp_right & q_right).sum()]
        if local:
            terms += _Accumulator.terms(capture(model, x, feed=reference.inputs[step]).v, fp_v)
        values = _read(terms)
        layers = len(fp_v)
        v_acc.add(fp_v, values[:2 * layers])
        for name, count in zip(fp_v, values[2 * layers:3 * layers]):
            mismatch[name] = mismatch.get(name, 0.0) + count
            counts[name] = counts.get(name, 0) + fp_spikes[name].numel()
        rest = values[3 * layers:]
        kl_sum += rest[0]
        logit_diff += rest[1]
        logit_norm += rest[2]
        lost += int(rest[3])
        gained += int(rest[4])
        if local:
            local_acc.add(fp_v, rest[5:])
        seen += len(x)
        per_layer = v_acc.per_layer()
        totals = DriftTotals(per_layer, {n: mismatch[n] / counts[n] for n in mismatch},
                             (logit_diff / logit_norm) ** 0.5 if logit_norm > 0 else 0.0, kl_sum, lost, gained,
                             seen, local_acc.per_layer() if local else None)
        values = {name: DEFINITIONS[name](totals) for name in DEFINITIONS if local or not needs_layer_inputs(name)}
        yield DriftStep(step, seen, values, per_layer, lost, gained)


def drift(model: nn.Module, reference: FPReference, local: bool = False) -> DriftStep:
    """The drift over the whole calibration set."""
    last = None
    for last in drift_steps(model, reference, local=local):
        pass
    return last
