"""Search space, objective, GreedySampler, BeamSampler, DriftPruner, study helpers. No Hydra."""
from aqsvit.search._beam import BeamSampler
from aqsvit.search._greedy import GreedySampler
from aqsvit.search._pruner import DriftPruner
from aqsvit.search._stepwise import Outcome, Plan, StepwiseSampler
from aqsvit.search.space import GRANULARITIES, ORDERS, SearchSpace

# StepwiseSampler, Outcome and Plan: the base a new stepwise sampler subclasses (see _greedy.py)
__all__ = ["GRANULARITIES", "ORDERS", "BeamSampler", "DriftPruner", "GreedySampler", "Outcome", "Plan", "SearchSpace",
           "StepwiseSampler"]
