"""Where a stepwise walk starts: strategy objects a sampler takes as its ``start`` (as Optuna's
NSGAIISampler takes its ``crossover``), and the one table from config names to them.

- :class:`PreciseStart`: every unit at its most precise choice (AQ4SViT);
- :class:`OneWidthStart`: first the cheapest one-width assignment that is feasible, tried cheapest
  first like one more greedy step; the precise start when none is feasible;
- :class:`SensitivityStart`: that one-width step, then probes of every unit alone and the cheapest
  feasible pick of an integer program over their sensitivities
  (:mod:`aqsvit.search.stepwise.sensitivity`); the walk starts from the cheaper of the two;
- :class:`AutoStart`: resolves to the sensitivity start while its probes are at most
  ``max_probes`` (:data:`AUTO_MAX_PROBES`), else to the one-width start.

A sampler resolves its start for its space once (:meth:`WalkStart.resolve`); the resume
fingerprint records the resolved start (:meth:`WalkStart.fingerprint`), so ``auto`` is recorded as
what it chose. ``search.start`` names an entry of :data:`STARTS` (:func:`walk_start`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from aqsvit.errors import invalid
from aqsvit.search.space import Choice, SearchSpace
from aqsvit.search.stepwise.outcome import Outcome, Plan, first_feasible
from aqsvit.search.stepwise.sensitivity import PROBE_MEASURE, SensitivityProgram, probes, sensitivity_start

AUTO_MAX_PROBES = 2000  # AutoStart: the sensitivity start up to this many probes, one_width above


class WalkStart(ABC):
    """Where a stepwise walk starts. Subclasses implement :meth:`assignment`; every unit then
    only moves below its start choice."""

    name: ClassVar[str]  # the search.start name, and what the fingerprint records

    def resolve(self, space: SearchSpace) -> WalkStart:
        """The concrete start for ``space`` (itself, except for :class:`AutoStart`)."""
        return self

    @abstractmethod
    def assignment(self, space: SearchSpace, outcomes: Mapping[str, Outcome]) -> dict[str, Choice] | Plan:
        """The start assignment, or the plan of what to evaluate before it is known."""

    def fingerprint(self) -> str:
        """What the resume fingerprint appends to a stepwise sampler's description ('' for the
        precise start, as before starts existed): outcomes of different starts are not mixed."""
        return f" from {self.name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


class PreciseStart(WalkStart):
    """Every unit at the space's most precise choice (AQ4SViT's start)."""

    name = "precise"

    def assignment(self, space: SearchSpace, outcomes: Mapping[str, Outcome]) -> dict[str, Choice] | Plan:
        return space.uniform(space.start)

    def fingerprint(self) -> str:
        return ""


class OneWidthStart(WalkStart):
    """The cheapest feasible one-width assignment (the precise one when none is): few trials to a
    first feasible result, and few candidates per unit after it."""

    name = "one_width"

    def assignment(self, space: SearchSpace, outcomes: Mapping[str, Outcome]) -> dict[str, Choice] | Plan:
        width, pending = first_feasible([space.uniform(c) for c in space.candidates()], outcomes, space.key)
        if pending:
            return Plan(proposals=pending)
        return width or space.uniform(space.start)


class SensitivityStart(OneWidthStart):
    """The one-width start, then ``1 + units x schemes`` probes (a calibration batch each, all
    independent) and the integer program's cheapest feasible pick: the cheaper of the two."""

    name = "sensitivity"

    def __init__(self) -> None:
        self._programs: dict[str, SensitivityProgram] = {}  # the last probes' program (memoised picks)

    def assignment(self, space: SearchSpace, outcomes: Mapping[str, Outcome]) -> dict[str, Choice] | Plan:
        width = super().assignment(space, outcomes)
        if isinstance(width, Plan):
            return width
        picked, pending, probing = sensitivity_start(space, outcomes, space.key, self._programs)
        if picked is None:
            return Plan(proposals=pending, probes=probing)
        return min(picked, width, key=space.cost)

    def fingerprint(self) -> str:
        return f" from {self.name} ({PROBE_MEASURE})"


class AutoStart(WalkStart):
    """The sensitivity start while its probes (:func:`~aqsvit.search.stepwise.sensitivity.probes`)
    are at most ``max_probes`` (default :data:`AUTO_MAX_PROBES`), else the one-width start.
    benchmarks/results/compare.md: the sensitivity start ends far below the others on both the
    18-layer digits model (37 probes with its weights' noise known, 181 without) and the 42-layer
    spikformer_wide (85, or 421); a space of thousands of units (layers split into channel blocks)
    would spend most of a search on probes, and walks from one width instead."""

    name = "auto"

    def __init__(self, max_probes: int | None = None) -> None:
        self.max_probes = max_probes

    def resolve(self, space: SearchSpace) -> WalkStart:
        limit = AUTO_MAX_PROBES if self.max_probes is None else self.max_probes
        return SensitivityStart() if len(probes(space)) <= limit else OneWidthStart()

    def assignment(self, space: SearchSpace, outcomes: Mapping[str, Outcome]) -> dict[str, Choice] | Plan:
        return self.resolve(space).assignment(space, outcomes)

    def __repr__(self) -> str:
        return f"AutoStart(max_probes={self.max_probes})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AutoStart) and other.max_probes == self.max_probes

    def __hash__(self) -> int:
        return hash((AutoStart, self.max_probes))


# search.start -> its strategy: the one place a config name becomes a start
STARTS: dict[str, type[WalkStart]] = {"auto": AutoStart, "precise": PreciseStart, "one_width": OneWidthStart,
                                      "sensitivity": SensitivityStart}


def walk_start(start: WalkStart | str) -> WalkStart:
    """``start`` itself, or the strategy the config name ``start`` selects (one-line error otherwise)."""
    if isinstance(start, WalkStart):
        return start
    if not isinstance(start, str) or start not in STARTS:
        raise invalid("search.start", start, STARTS)
    return STARTS[start]()
