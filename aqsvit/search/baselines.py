"""The hand-made approach a user would otherwise take: one scheme and bit width for all layers."""
from __future__ import annotations

from collections.abc import Sequence

from aqsvit.quant import uniform_assignment
from aqsvit.search.evaluator import Evaluator, Measurement


def one_width_baseline(evaluator: Evaluator, schemes: Sequence[str],
                       bits: Sequence[int]) -> list[tuple[str, int, Measurement]]:
    """Measure every ``scheme x bits`` the evaluator's hardware target holds, applied to the whole
    network, FP32 (the reference) first."""
    rows = [("fp32", 32, evaluator.measure({}))]
    for scheme in schemes:
        for b in bits:
            if scheme != "fp32" and evaluator.target.holds(scheme, b):
                rows.append((scheme, b, evaluator.measure(uniform_assignment(evaluator.layers, scheme, b))))
    return rows
