"""Calibrate the drift threshold tau from fully evaluated candidates, and bound calibration drops.

``calibrate_tau`` fits accuracy drop as a non-decreasing function of drift (isotonic regression)
and returns the smallest drift at which the fitted drop exceeds ``delta``: above it, every
candidate measured so far at that drift or more failed the constraint on average.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def calibrate_tau(drifts: Sequence[float], drops: Sequence[float], delta: float) -> float:
    """Smallest drift whose isotonic-predicted drop exceeds ``delta``; ``inf`` if none does.

    The threshold sits halfway between the last drift predicted feasible and the first predicted
    infeasible, so it separates the two groups with a margin on both sides.
    """
    if len(drifts) == 0:
        return math.inf
    from sklearn.isotonic import IsotonicRegression  # here: scikit-learn costs every process ~1.2 s to import

    x, y = np.asarray(drifts, float), np.asarray(drops, float)
    fit = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y)
    order = np.argsort(x)
    xs, pred = x[order], fit.predict(x[order])
    above = np.nonzero(pred > delta)[0]
    if len(above) == 0:
        return math.inf
    first = above[0]
    return float(xs[first]) if first == 0 else float((xs[first - 1] + xs[first]) / 2)


def drop_lower_bound(lost: int, gained: int, n: int, z: float = 3.0) -> float:
    """Lower confidence bound, in points, of the accuracy drop from paired calibration predictions.

    Per image the paired difference is +1 (``lost``: FP right, quantized wrong), -1 (``gained``)
    or 0. The variance is floored at 1/n so that a handful of images never looks certain.
    """
    if n == 0:
        return -math.inf
    mean = (lost - gained) / n
    var = (lost + gained) / n - mean ** 2
    return 100.0 * (mean - z * math.sqrt(max(var, 1.0 / n) / n))
