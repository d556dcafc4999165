"""The stepwise samplers and their pure parts, apart from the Optuna adaptors of the rest of
:mod:`aqsvit.search`: no torch is imported here (the OptunaHub package needs optuna, numpy and
scipy only).

- :mod:`~aqsvit.search.stepwise.base`: :class:`StepwiseSampler`, the abstract base (state from
  storage, claims, waiting, stopping); a subclass implements :meth:`~StepwiseSampler.plan`;
- :mod:`~aqsvit.search.stepwise.greedy`, :mod:`~aqsvit.search.stepwise.beam`: the two walks;
- :mod:`~aqsvit.search.stepwise.starts`: where a walk starts, as strategy objects (:class:`WalkStart`);
- :mod:`~aqsvit.search.stepwise.sensitivity`: probes, the integer program and its bisection;
- :mod:`~aqsvit.search.stepwise.outcome`: what trials say about assignments (pure functions).
"""
from aqsvit.search.stepwise.base import StepwiseSampler, check_front
from aqsvit.search.stepwise.beam import BeamSampler
from aqsvit.search.stepwise.greedy import GreedySampler
from aqsvit.search.stepwise.outcome import Outcome, Plan
from aqsvit.search.stepwise.starts import (STARTS, AutoStart, OneWidthStart, PreciseStart, SensitivityStart, WalkStart,
                                           walk_start)

__all__ = ["STARTS", "AutoStart", "BeamSampler", "GreedySampler", "OneWidthStart", "Outcome", "Plan", "PreciseStart",
           "SensitivityStart", "StepwiseSampler", "WalkStart", "check_front", "walk_start"]
