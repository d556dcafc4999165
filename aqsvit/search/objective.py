"""The objective: one trial = one assignment, drift-gated, then its accuracy (maximize) and
memory (minimize). Every trial records what a person reading the study wants to see."""
from __future__ import annotations

import time

import optuna

from aqsvit.proxy import FPReference, drift_steps
from aqsvit.evaluation import accuracy
from aqsvit.proxy.staged import StagedResult, allowed_errors, staged_accuracy
from aqsvit.search._pruner import DriftPruner
from aqsvit.search.evaluator import Evaluator
from aqsvit.search.space import SearchSpace

METRIC_NAMES = ("accuracy", "memory_bytes")
DIRECTIONS = ("maximize", "minimize")


class QuantizationObjective:
    """Callable for ``study.optimize``.

    Steps: apply the trial's assignment; run the calibration batches, recording the drift after
    each (``drift_steps``) and asking the pruner; then the accuracy on the evaluation split,
    staged so that it stops once the constraint is out of reach (``staged=True``). A stopped
    candidate ends PRUNED with its drift and evaluated images kept in user attrs. A finished one
    sets the constraint ``accuracy``: ``drop - delta`` (<= 0 feasible).
    """

    def __init__(self, evaluator: Evaluator, space: SearchSpace, reference: FPReference,
                 delta: float = 1.0, pruner: DriftPruner | None = None, staged: bool = True,
                 drift_definition: str = "kl") -> None:
        self.evaluator, self.space, self.reference = evaluator, space, reference
        self.delta, self.pruner, self.staged = delta, pruner, staged
        self.definition = pruner.definition if pruner is not None else drift_definition

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        started = time.perf_counter()
        choices = self.space.suggest(trial)
        assignment = self.space.assignment(choices)
        cost = self.evaluator.cost(assignment)
        for name in ("memory_bytes", "model_compression", "weight_compression", "effective_bits", "energy_nj"):
            trial.set_user_attr(name, getattr(cost, name))
        ev = self.evaluator
        steps = []
        with ev.quantizer.applied(assignment) as model:
            n_steps = len(self.reference.images)
            for step in drift_steps(model, self.reference):
                last = step.step == n_steps - 1
                steps.append({"step": step.step, "images": step.images, "values": step.values,
                              "lost": step.lost, "gained": step.gained, "last": last})
                reason = self.pruner.should_prune_step(trial.study, step, last) if self.pruner else None
                if reason or last:
                    self._record_drift(trial, steps, step)
                if reason:
                    trial.set_user_attr("pruned_by", reason)
                    trial.set_user_attr("images", step.images)
                    trial.set_user_attr("seconds", time.perf_counter() - started)
                    raise optuna.TrialPruned(f"{reason} gate at calibration step {step.step}")
            if self.staged:
                result = staged_accuracy(model, ev.test, ev.fp_accuracy, self.delta, device=ev.device)
            else:
                result = StagedResult(accuracy(model, ev.test, device=ev.device), len(ev.test))
        trial.set_user_attr("images", self.reference.num_images + result.images)
        trial.set_user_attr("seconds", time.perf_counter() - started)
        if result.accuracy is None:
            # stopped once more answers were wrong than the constraint allows: the best accuracy
            # it could still have reached bounds its drop from below
            total = len(ev.test)
            best = 100.0 * (total - allowed_errors(total, ev.fp_accuracy, self.delta) - 1) / total
            trial.set_user_attr("drop", ev.fp_accuracy - best)
            trial.set_user_attr("pruned_by", "staged accuracy")
            raise optuna.TrialPruned("staged accuracy: constraint out of reach")
        drop = ev.fp_accuracy - result.accuracy
        trial.set_user_attr("accuracy", result.accuracy)
        trial.set_user_attr("drop", drop)
        trial.set_constraint("accuracy", drop - self.delta)
        return result.accuracy, float(cost.memory_bytes)

    def _record_drift(self, trial: optuna.Trial, steps: list[dict], step) -> None:
        trial.set_user_attr("drift_steps", steps)
        trial.set_user_attr("drift", step.values[self.definition])
        trial.set_user_attr("drift_all", step.values)
        trial.set_user_attr("drift_layers", step.per_layer)
