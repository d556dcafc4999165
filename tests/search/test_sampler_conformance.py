"""Optuna's own sampler conformance suites against GreedySampler and BeamSampler (width 2).

Optuna publishes the tests a third-party sampler is held to (``optuna.testing.pytest_samplers``):
subclass a test case and override its ``sampler`` fixture with a factory. Every case there asks for
parameters outside the stepwise samplers' space ("x", "y", ...), so these check the samplers as
plain Optuna samplers: independent sampling of every distribution, ``n_trials`` honoured, NaN
values, partially fixed, conditional and dynamic-range objectives. ``RelativeSamplerTestCase`` is
not run: it calls ``sample_relative`` for a space of its own and expects values for it, while the
stepwise samplers relative space is empty by design (they hand out whole assignments of their own
space through ``sample_independent``, claimed once per trial).
"""
from __future__ import annotations

import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase

from aqsvit.search import BeamSampler, GreedySampler, SearchSpace

SPACE = SearchSpace.from_units({"a": 100, "b": 10})
FACTORIES = {
    "greedy": lambda: GreedySampler(SPACE),
    "beam2": lambda: BeamSampler(SPACE, width=2),
}


@pytest.fixture(params=sorted(FACTORIES))
def stepwise(request):
    return FACTORIES[request.param]


class TestBasic(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self, stepwise):
        return stepwise


class TestMultiObjective(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self, stepwise):
        return stepwise
