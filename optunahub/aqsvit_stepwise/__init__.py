"""OptunaHub entry point: the stepwise quantization samplers of aqsvit (the package holds the code).
Importing it loads optuna, numpy and scipy only (no torch): ``aqsvit.search`` is torch-free.
A sampler's ``start`` takes one of the start objects (``SensitivityStart()``...) or its name."""
from aqsvit.search import (AutoStart, BeamSampler, GreedySampler, OneWidthStart, PreciseStart, SearchSpace,
                           SensitivityStart)

__all__ = ["AutoStart", "BeamSampler", "GreedySampler", "OneWidthStart", "PreciseStart", "SearchSpace",
           "SensitivityStart"]
