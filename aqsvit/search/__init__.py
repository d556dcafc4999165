"""Search space, objective, GreedySampler, BeamSampler, DriftPruner, study helpers. No Hydra."""
from aqsvit.search._beam import BeamSampler
from aqsvit.search._greedy import GreedySampler
from aqsvit.search._pruner import DriftPruner
from aqsvit.search.space import GRANULARITIES, ORDERS, SearchSpace

__all__ = ["GRANULARITIES", "ORDERS", "BeamSampler", "DriftPruner", "GreedySampler", "SearchSpace"]
