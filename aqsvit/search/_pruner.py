"""DriftPruner: stop a candidate on its calibration forward, before its accuracy evaluation."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from optuna.trial import TrialState

from aqsvit.errors import invalid
from aqsvit.proxy.calibrate import calibrate_tau, drop_lower_bound
from aqsvit.proxy.drift import DEFINITIONS, DriftStep
from aqsvit.search.step_pruner import StepPruner
from aqsvit.search.stepwise.base import StepwiseSampler
from aqsvit.search.vocabulary import CALIBRATION_ACCURACY, DRIFT_ATTR, DRIFT_GATE, DRIFT_STEPS_ATTR, DROP_ATTR, OUTRANKED

if TYPE_CHECKING:
    from collections.abc import Mapping

    from optuna.study import Study
    from optuna.trial import FrozenTrial

    from aqsvit.search.space import Choice


class DriftPruner(StepPruner):
    """Prune a quantization candidate from its drift on the calibration batches.

    After each calibration batch (a step) the gates run (2 and 3 on the whole calibration set):

    1. the *paired calibration gate*: the calibration images are labelled, so the drift pass also
       counts images the FP model gets right and the candidate wrong (and the reverse); when the
       lower confidence bound (``z`` sigmas) of that paired drop exceeds ``delta`` the candidate
       is pruned. It needs no history and stops hopeless candidates after one batch;
    2. the *drift threshold*: on the full calibration set, a drift (``definition``) above ``tau``
       prunes. ``tau`` is given, or with ``calibrate=True`` calibrated online from the study's
       evaluated trials (isotonic fit of accuracy drop against drift; see
       :func:`aqsvit.proxy.calibrate_tau`) once ``min_evaluated`` of them exist;
    3. the *tie gate*: with a sampler that breaks ties by drift (BeamSampler), a candidate whose
       drift already loses every place it could take is pruned (``outranked``).

    By default (no ``tau``, no ``calibrate``) no decision can change the result: gate 1 depends
    on the candidate alone and gate 3 prunes only what could not enter the beam, so one worker or
    many, interrupted or not, reach the same result.
    An online-calibrated ``tau`` prunes more, but depends on which trials happened to finish first.

    Optuna 5 raises NotImplementedError for ``trial.report``/``should_prune`` in multi-objective
    studies, so the objective calls :meth:`should_prune_step` itself and raises
    ``optuna.TrialPruned``; :meth:`prune` serves single-objective studies and reads the last
    step from the trial's ``drift_steps`` user attr.

    Note:
        The calibration reads the study's trials from storage, so every worker of a distributed
        study calibrates on all workers' evaluations.

    Args:
        delta: the accuracy constraint in points.
        definition: the drift definition gated by ``tau`` (one of ``aqsvit.proxy.DEFINITIONS``).
        tau: a fixed threshold (None: no fixed threshold).
        calibrate: calibrate ``tau`` online from evaluated trials when ``tau`` is None.
        min_evaluated: fully evaluated trials needed before a calibrated ``tau`` is used.
        z: confidence of the paired calibration gate, in standard deviations.
    """

    def __init__(self, delta: float = 1.0, definition: str = "logit", tau: float | None = None,
                 calibrate: bool = False, min_evaluated: int = 4, z: float = 3.0) -> None:
        if definition not in DEFINITIONS:
            raise invalid("pruner.definition", definition, DEFINITIONS)
        if not delta >= 0:
            raise invalid("delta", delta, "numbers >= 0")
        self.delta, self.definition, self.tau, self.calibrate = delta, definition, tau, calibrate
        self.min_evaluated, self.z = min_evaluated, z

    def current_tau(self, study: Study) -> float:
        """The threshold in force: the fixed one, or calibrated from evaluated trials."""
        if self.tau is not None:
            return self.tau
        if not self.calibrate:
            return math.inf
        points = [(t.user_attrs[DRIFT_ATTR], t.user_attrs[DROP_ATTR])
                  for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                  if DRIFT_ATTR in t.user_attrs and DROP_ATTR in t.user_attrs]
        if len(points) < self.min_evaluated:
            return math.inf
        drifts, drops = zip(*points)
        return calibrate_tau(drifts, drops, self.delta)

    def should_prune_step(self, study: Study, step: DriftStep, last: bool,
                          choices: Mapping[str, Choice] | None = None) -> str | None:
        """The reason to prune after ``step`` (``last``: the whole calibration set), else None.

        With the candidate's ``choices``, a stepwise sampler that ranks candidates by drift
        (:meth:`StepwiseSampler.outranked`, as :class:`~aqsvit.search.BeamSampler`) may also rule
        that the drift makes it lose every place it could take in its walk (a front's: the one for
        this pruner's delta, as a front builds one pruner per delta): pruned as ``outranked``."""
        if drop_lower_bound(step.lost, step.gained, step.images, self.z) > self.delta:
            return CALIBRATION_ACCURACY
        if last and step.values[self.definition] > self.current_tau(study):
            return DRIFT_GATE
        sampler = study.sampler
        if last and choices is not None and isinstance(sampler, StepwiseSampler) \
                and sampler.outranked(choices, step.values[self.definition], self.delta):
            return OUTRANKED
        return None

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        steps = trial.user_attrs.get(DRIFT_STEPS_ATTR)
        if not steps:
            return False
        s = steps[-1]
        step = DriftStep(s["step"], s["images"], s["values"], {}, s["lost"], s["gained"])
        return self.should_prune_step(study, step, bool(s.get("last"))) is not None
