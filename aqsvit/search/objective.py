"""The objective: one trial = one assignment, drift-gated, then its accuracy (maximize) and
memory (minimize). Every trial records what a person reading the study wants to see."""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

import optuna
import torch
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import TrialState
from torch.utils.data import Dataset
from spikingjelly.activation_based import functional

from aqsvit.proxy import FPReference, drift_steps
from aqsvit.proxy.drift import needs_layer_inputs, summed_kl
from aqsvit.proxy.staged import StagedResult, allowed_errors, screen_size
from aqsvit.quant import Assignment
from aqsvit.search.evaluator import Evaluator
from aqsvit.search.space import Choice, SearchSpace
from aqsvit.search.step_pruner import StepPruner
from aqsvit.search.trials import dashboard_constraints, set_dashboard_constraints
from aqsvit.search.vocabulary import (ACCURACY_ATTR, BUDGET_ATTR, COST_ATTRS, DASHBOARD_CONSTRAINTS,
                                      DELTA_ATTR, DRIFT_ALL_ATTR, DRIFT_ATTR, DRIFT_LAYERS_ATTR, DRIFT_STEPS_ATTR,
                                      DROP_ATTR, ERRORS_ATTR, IMAGES_ATTR, MACS_ATTR,
                                      MEASURED_BY_ATTR, PROBE_ATTR, PROBED,
                                      PRUNED_BY_ATTR, SCREENED_ATTR, SECONDS_ATTR, SENSITIVITY_ATTR, STAGED_ACCURACY,
                                      TARGET_GATE, VERIFIED_ATTR, VERIFY_ATTR)

METRIC_NAMES = ("accuracy", "memory_bytes")
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class WalkMeasure:
    """How a front's walk for one delta measures its trials, as a search for that delta alone
    would: its pruner (built for that delta) and the evaluation split in that search's screen
    order (None: the split as it is)."""

    pruner: BasePruner | None
    order: Dataset | None = None


class QuantizationObjective:
    """Callable for ``study.optimize``.

    Steps: apply the trial's assignment; run the calibration batches, recording the drift after
    each (``drift_steps``) and asking the pruner; then the accuracy on the evaluation split,
    staged so that it stops once the constraint is out of reach (``staged=True``). A stopped
    candidate ends PRUNED with its drift and evaluated images kept in user attrs. A finished one
    sets the constraint ``accuracy``: ``drop - delta`` (<= 0 feasible).

    With ``screen < 1`` (used with the stepwise samplers, which verify what they keep) a candidate
    still within the error budget after the first ``screen`` fraction of the hardest-first split
    ends there: COMPLETE with user attr ``screened``, its accuracy counting only the errors seen.
    A trial the sampler marks as a verification (system attr ``aqsvit:verify``) skips the drift
    and measures the whole split; one it marks as a probe (``aqsvit:probe``) runs the first
    calibration batch only and ends PRUNED with ``pruned_by`` ``probe`` and its ``sensitivity``
    (:meth:`_probe`): no drift, no gate, no accuracy.

    The pruner: a :class:`~aqsvit.search.StepPruner` is asked after each calibration step
    (``should_prune_step``); any other Optuna pruner reads the step's drift as the trial's
    intermediate value through its ordinary ``prune`` (see :mod:`aqsvit.search.step_pruner`) and
    prunes as its class name (``pruned_by``).

    A front search (``front``: a :class:`WalkMeasure` per delta) measures a trial its sampler
    claimed for a delta (system attr ``aqsvit:delta``) as a search for that delta alone would:
    against that delta, with that walk's pruner and screen order.
    """

    def __init__(self, evaluator: Evaluator, space: SearchSpace, reference: FPReference,
                 delta: float = 1.0, pruner: BasePruner | None = None, staged: bool = True,
                 drift_definition: str = "logit", screen: float = 1.0,
                 front: Mapping[float, WalkMeasure] | None = None) -> None:
        self.evaluator, self.space, self.reference = evaluator, space, reference
        self.delta, self.pruner, self.staged, self.screen = delta, pruner, staged, screen
        self.front = dict(front or {})  # a front search's walks by delta (``delta``: the loosest)
        # a StepPruner's decisions read its own drift definition: the one every trial records
        own = pruner.definition if isinstance(pruner, StepPruner) else None
        self.definition = own or drift_definition
        self._base_logits: torch.Tensor | None = None  # the probes' base on the first calibration batch

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        started = time.perf_counter()
        choices = self.space.suggest(trial)
        unheld = next((c for c in choices.values() if not self.space.target.holds(*c)), None)
        if unheld is not None:  # Optuna's own samplers pick scheme and bits apart: a pair the chip cannot store
            trial.set_user_attr(PRUNED_BY_ATTR, TARGET_GATE)
            raise optuna.TrialPruned(f"target {self.space.target.name} does not hold {unheld[0]} {unheld[1]}-bit codes")
        assignment = self.space.assignment(choices)
        cost = self.evaluator.cost(assignment)
        for name in COST_ATTRS:
            trial.set_user_attr(name, getattr(cost, name))
        ev = self.evaluator
        marks = trial.storage.get_trial_system_attrs(trial._trial_id)
        verify, probe = bool(marks.get(VERIFY_ATTR)), bool(marks.get(PROBE_ATTR))
        # a front's walk measures as the search for its delta alone would
        delta = float(marks.get(DELTA_ATTR, self.delta))
        walk = self.front.get(delta)
        pruner = self.pruner if walk is None else walk.pruner
        if walk is not None and walk.order is not None and ev.test is not walk.order and not probe:
            ev.test = walk.order  # (a probe reads calibration images only)
        steps = []
        local = needs_layer_inputs(self.definition)
        counted = ev.stages.macs

        def macs(drift_images: int) -> float:
            """MACs this trial ran: the cache counts its own forwards; a layer-local drift runs two
            whole forwards per calibration image outside it."""
            return ev.stages.macs - counted + (2 * drift_images * ev.stages.full_macs if local else 0.0)

        if probe:
            self._probe(trial, assignment, started, counted)
        with ev.quantizer.applied(assignment) as model:
            n_steps = len(self.reference.images)
            forward = ev.stages.candidate(assignment, split="calibration", with_payload=True)
            for step in () if verify else drift_steps(model, self.reference, local=local, forward=forward):
                last = step.step == n_steps - 1
                steps.append({"step": step.step, "images": step.images, "values": step.values,
                              "lost": step.lost, "gained": step.gained, "last": last})
                reason = self._ask_pruner(pruner, trial, step, last, choices) if pruner is not None else None
                if reason or last:
                    self._record_drift(trial, steps, step)
                if reason:
                    trial.set_user_attr(PRUNED_BY_ATTR, reason)
                    trial.set_user_attr(IMAGES_ATTR, step.images)
                    trial.set_user_attr(MACS_ATTR, macs(step.images))
                    trial.set_user_attr(SECONDS_ATTR, time.perf_counter() - started)
                    raise optuna.TrialPruned(f"{reason} gate at calibration step {step.step}")
            if self.staged:
                screen = None if verify else screen_size(len(ev.test), self.screen)
                result = ev.staged(assignment, delta, limit=screen)
            else:
                result = StagedResult(ev.accuracy(model), len(ev.test))
        drift_images = steps[-1]["images"] if steps else 0
        trial.set_user_attr(IMAGES_ATTR, drift_images + result.images)
        trial.set_user_attr(MACS_ATTR, macs(drift_images))
        if verify:
            trial.set_user_attr(VERIFIED_ATTR, True)
        attrs, constraint = self._outcome(result, delta)
        for name, value in attrs.items():
            trial.set_user_attr(name, value)
        trial.set_user_attr(SECONDS_ATTR, time.perf_counter() - started)
        if constraint is None:
            raise optuna.TrialPruned("staged accuracy: constraint out of reach")
        trial.set_constraint("accuracy", constraint)
        set_dashboard_constraints(trial, constraint, result.screened)
        return result.accuracy, float(cost.memory_bytes)

    def _ask_pruner(self, pruner: BasePruner, trial: optuna.Trial, step, last: bool,
                    choices: dict[str, Choice]) -> str | None:
        """``pruner``'s reason to stop after ``step``, else None."""
        if isinstance(pruner, StepPruner):
            return pruner.should_prune_step(trial.study, step, last, choices)
        # a plain Optuna pruner: what trial.report and trial.should_prune would do, were they
        # allowed in a multi-objective study, on a view of the study that minimizes the drift
        trial.storage.set_trial_intermediate_value(trial._trial_id, step.step, step.values[self.definition])
        frozen = trial.storage.get_trial(trial._trial_id)
        return type(pruner).__name__ if pruner.prune(DriftView(trial.study), frozen) else None

    def _outcome(self, result: StagedResult, delta: float | None = None) -> tuple[dict[str, object], float | None]:
        """The user attrs an accuracy evaluation against ``delta`` (default: the objective's) leaves,
        and its constraint (``drop - delta``; None: stopped, so the trial ends PRUNED)."""
        ev, attrs = self.evaluator, {}
        delta = self.delta if delta is None else delta
        total = len(ev.test)
        if self.staged:  # what the stepwise samplers judge screens and verifications by
            attrs[ERRORS_ATTR] = result.errors
            attrs[BUDGET_ATTR] = allowed_errors(total, ev.fp_accuracy, delta)
        if result.screened:
            attrs[SCREENED_ATTR] = True
        if result.accuracy is None:
            # stopped once more answers were wrong than the constraint allows: the best accuracy
            # it could still have reached bounds its drop from below
            best = 100.0 * (total - allowed_errors(total, ev.fp_accuracy, delta) - 1) / total
            attrs[DROP_ATTR] = ev.fp_accuracy - best
            attrs[PRUNED_BY_ATTR] = STAGED_ACCURACY
            return attrs, None
        attrs[ACCURACY_ATTR] = result.accuracy
        attrs[DROP_ATTR] = ev.fp_accuracy - result.accuracy
        return attrs, attrs[DROP_ATTR] - delta

    def measured_trial(self, choices: dict[str, Choice], result: StagedResult, macs: float,
                       source: str, delta: float | None = None) -> optuna.trial.FrozenTrial:
        """A finished trial of ``choices``, measured outside a trial against ``delta`` (default: the
        objective's; ``source`` says where, in the ``measured_by`` user attr): what a trial of this
        objective that measured the same ``result`` records, so a stepwise sampler reads it as that
        outcome (see ``StepwiseSampler.add_measured``)."""
        space, cost = self.space, self.evaluator.cost(self.space.assignment(choices))
        attrs: dict[str, object] = {name: getattr(cost, name) for name in COST_ATTRS}
        attrs |= {IMAGES_ATTR: result.images, MACS_ATTR: macs, MEASURED_BY_ATTR: source}
        outcome, constraint = self._outcome(result, delta)
        attrs |= outcome
        system = {} if constraint is None else {DASHBOARD_CONSTRAINTS: dashboard_constraints(constraint, result.screened)}
        return optuna.trial.create_trial(
            state=TrialState.PRUNED if constraint is None else TrialState.COMPLETE,
            values=None if constraint is None else [result.accuracy, float(cost.memory_bytes)],
            params=space.params(choices), distributions=space.distributions(), user_attrs=attrs,
            system_attrs=system, constraints=None if constraint is None else {"accuracy": constraint})

    def _probe(self, trial: optuna.Trial, assignment: Assignment, started: float, counted: float) -> NoReturn:
        """Measure a probe and stop it: its ``sensitivity`` is KL(precise || probe) of the class
        distributions on the first calibration batch, where precise is the space's most precise
        assignment (the probes' base: each probe changes one unit of it). Against the base rather
        than the FP model, a change that happens to cancel some of the base's own error still
        counts as the perturbation it is, so the sensitivities are never negative and add up
        (to second order) over units as the sampler's integer program assumes."""
        ev, batch = self.evaluator, self.reference.images[0]  # the batch _calibration_logits runs
        if self._base_logits is None:
            self._base_logits = self._calibration_logits(self.space.assignment(self.space.uniform(self.space.start)))
        logits = self._calibration_logits(assignment)
        trial.set_user_attr(SENSITIVITY_ATTR, float(summed_kl(self._base_logits, logits)) / len(batch))
        trial.set_user_attr(PRUNED_BY_ATTR, PROBED)
        trial.set_user_attr(IMAGES_ATTR, len(batch))
        trial.set_user_attr(MACS_ATTR, ev.stages.macs - counted)
        trial.set_user_attr(SECONDS_ATTR, time.perf_counter() - started)
        raise optuna.TrialPruned("a probe: its sensitivity is all the sampler asked for")

    @torch.no_grad()
    def _calibration_logits(self, assignment: Assignment) -> torch.Tensor:
        """Logits of ``assignment`` on the first calibration batch, from the first stage it changes."""
        with self.evaluator.quantizer.applied(assignment) as model:
            logits = self.evaluator.stages.candidate(assignment, split="calibration")(self.reference.images[0], 0)
            functional.reset_net(model)
        return logits

    def _record_drift(self, trial: optuna.Trial, steps: list[dict], step) -> None:
        trial.set_user_attr(DRIFT_STEPS_ATTR, steps)
        trial.set_user_attr(DRIFT_ATTR, step.values[self.definition])
        trial.set_user_attr(DRIFT_ALL_ATTR, step.values)
        trial.set_user_attr(DRIFT_LAYERS_ATTR, step.per_layer)


class DriftView:
    """A study as a plain Optuna pruner reads it: one objective, the drift it was given as each
    step's intermediate value, minimized; everything else is the study's own."""

    direction = StudyDirection.MINIMIZE
    directions = [StudyDirection.MINIMIZE]

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str):
        return getattr(self._study, name)
