"""OptunaHub entry point: the stepwise quantization samplers of aqsvit (the package holds the code)."""
from aqsvit.search import BeamSampler, GreedySampler, SearchSpace

__all__ = ["BeamSampler", "GreedySampler", "SearchSpace"]
