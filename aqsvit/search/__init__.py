"""Search space, objective, GreedySampler, BeamSampler, DriftPruner, study helpers. No Hydra.

Importing this package imports no torch: the space and the stepwise samplers
(:mod:`aqsvit.search.stepwise`) need optuna, numpy and scipy only; :class:`DriftPruner` (which
measures with torch) is imported on first use."""
from aqsvit.search.space import GRANULARITIES, ORDERS, SearchSpace
from aqsvit.search.step_pruner import StepPruner
from aqsvit.search.stepwise import (AutoStart, BeamSampler, GreedySampler, OneWidthStart, Outcome, Plan, PreciseStart,
                                    SensitivityStart, StepwiseSampler, WalkStart)


def __getattr__(name: str):
    if name == "DriftPruner":
        from aqsvit.search._pruner import DriftPruner
        return DriftPruner
    raise AttributeError(f"module 'aqsvit.search' has no attribute {name!r}")


# StepwiseSampler, Outcome and Plan: the base a new stepwise sampler subclasses (see stepwise/greedy.py);
# WalkStart: the base of a new start; StepPruner: of a pruner the objective asks after each calibration step
__all__ = ["GRANULARITIES", "ORDERS", "AutoStart", "BeamSampler", "DriftPruner", "GreedySampler", "OneWidthStart",
           "Outcome", "Plan", "PreciseStart", "SearchSpace", "SensitivityStart", "StepPruner", "StepwiseSampler",
           "WalkStart"]
