"""The sensitivity start of the stepwise samplers: single-unit probes, an integer program over
their sensitivities, and a bisection on the program's budget, all derived from outcomes in storage.

1. Probes: the most precise assignment, and every unit alone at its cheapest choice of each scheme
   (:func:`probe_choices`; at every choice below the most precise when the space knows no weight
   noise). A probe is measured on the first calibration batch only (the objective stops it there,
   PRUNED with ``pruned_by`` ``probe``). Its ``sensitivity`` user attr (our objective records the
   KL divergence of its class distributions from the precise assignment's, so the precise probe's
   is 0; without the attr, the ``drift`` attr) minus the precise assignment's is the unit's
   sensitivity to that choice. A choice not probed gets its scheme's probe's sensitivity times the
   ratio of their squared weight perturbations (:func:`scaled`, HAWQ-V2's form), each then raised
   to that of any wider choice of the same scheme (:func:`monotone`). Probing the cheapest choice
   measures where the search ends (near 2 bits on both benchmark models) and scales down to the
   wider ones, where the second-order form holds best. On digits (reference 908005d0) this takes
   37 probes instead of 181 and about half the search's full evaluations (9.4 against 17.9, both
   before the stem's convolutions became stages of their own), and ends at 14.83x instead of
   13.98x; on spikformer_wide (0242f295) 85 probes instead of 421, 13.16x against 13.13x.
2. Program (HAWQ-V3's form): the least weight memory whose summed sensitivities stay within a
   budget, one choice per unit (a multiple-choice knapsack, solved exactly by scipy's HiGHS
   ``milp``). KL is the quantity to sum: to second order it is a quadratic form in the weight
   perturbation (the Fisher information), which splits into per-layer terms once the cross-layer
   blocks are neglected (HAWQ's assumption as well). On digits, a variant that summed the logit
   drift (a norm, not a square) ended at 14.49x, against 14.84x with KL (delta 1).
3. Bisection: the program's pick at the largest budget (every unit at its cheapest choice) is
   evaluated first; while it is infeasible the budget is bisected (geometric mean) between the
   smallest positive sensitivity and the last infeasible budget, one evaluation a step. The
   sampler starts its walk from the cheaper of the cheapest feasible pick and the one-width
   result it found first; the walk (greedy or beam, every unit below its start choice) then takes
   what the estimate left on the table.

All probes are independent, so many workers evaluate them at once; every worker replays the
bisection from the same outcomes and so proposes the same picks.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from aqsvit.search.space import Choice, SearchSpace, Unit
from aqsvit.search.vocabulary import PROBE_PREFIX

PROBE_MEASURE = "probes: KL from the precise outputs, scaled by weight noise"  # in the resume fingerprint:
# sensitivities derived otherwise (before: every choice probed) are not mixed with these in one study
BISECTION_STEPS = 8  # evaluations after the largest budget's pick: the budget to ~(hi/lo)^(1/256)
PROGRAM_SECONDS = 10.0  # HiGHS's limit per solve (200 units x 10 choices take ~0.2 s)


def probe_choices(space: SearchSpace) -> list[Choice]:
    """The choices each unit is probed at: each scheme's cheapest when every unit knows its weight
    noise (the others are scaled from it, :func:`scaled`), else every candidate."""
    candidates = space.candidates()
    if not all(unit.noise for unit in space.units):
        return candidates
    return [next(c for c in candidates if c[0] == scheme) for scheme in space.schemes
            if any(c[0] == scheme for c in candidates)]


def probes(space: SearchSpace) -> list[dict[str, Choice]]:
    """The most precise assignment, then each unit alone at each of :func:`probe_choices` (unit
    order, cheapest first)."""
    precise, choices = space.uniform(space.start), probe_choices(space)
    return [precise, *({**precise, unit.name: choice} for unit in space.units for choice in choices)]


def scaled(space: SearchSpace, unit: Unit, measured: Mapping[Choice, float]) -> dict[Choice, float]:
    """Every candidate's sensitivity from the probed ones: a choice not probed gets its scheme's
    probe's, times the ratio of their weight noise (:attr:`Unit.noise`). To second order KL is a
    quadratic form in the weight perturbation, so at a fixed direction it grows with the squared
    perturbation (HAWQ-V2's trace times squared norm, with the trace read off the probe)."""
    noise = dict(unit.noise)
    out = {}
    for choice in space.candidates():
        if choice in measured:
            out[choice] = measured[choice]
            continue
        probe = next(c for c in measured if c[0] == choice[0])
        out[choice] = max(measured[probe], 0.0) * (noise[choice] / noise[probe] if noise[probe] > 0 else 0.0)
    return out


def monotone(space: SearchSpace, measured: Mapping[Choice, float]) -> dict[Choice, float]:
    """One unit's sensitivities, the start choice's 0, each choice's at least that of every wider
    choice of its scheme (fewer levels of one scheme never perturb less: what one batch measures
    otherwise is noise) and never negative."""
    out = {space.start: 0.0}
    for scheme in space.schemes:
        at_least = 0.0
        for bits in space.bits:  # widest first
            if (scheme, bits) in measured:
                at_least = max(at_least, measured[scheme, bits])
                out[scheme, bits] = at_least
    return out


class SensitivityProgram:
    """The integer program over the probes' sensitivities, solved per budget (memoised: the
    samplers replay the bisection on every plan)."""

    def __init__(self, space: SearchSpace, sensitivities: dict[str, dict[Choice, float]]) -> None:
        self.options = [(unit.name, choice) for unit in space.units for choice in sensitivities[unit.name]]
        self.costs = np.array([float(unit.numel) * space.choice_bits(choice)
                               for unit in space.units for choice in sensitivities[unit.name]])
        self.sensitivities = np.array([sensitivities[n][c] for n, c in self.options])
        # a memory tie goes to the lower summed sensitivity: the tie-breaker adds under one bit in all
        self.objective = self.costs + 0.5 * self.sensitivities / max(float(self.sensitivities.sum()), 1e-12)
        self.one_each = np.array([[1.0 if n == unit.name else 0.0 for n, _ in self.options] for unit in space.units])
        self.largest_budget = sum(max(by_choice.values()) for by_choice in sensitivities.values())
        positive = self.sensitivities[self.sensitivities > 0]
        self.smallest_budget = float(positive.min()) if positive.size else 0.0
        self.fallback = space.uniform(space.start)
        self._picks: dict[float, dict[str, Choice]] = {}

    def pick(self, budget: float) -> dict[str, Choice]:
        """The least-memory assignment whose summed sensitivities are at most ``budget``."""
        if budget not in self._picks:
            result = milp(self.objective, integrality=np.ones(len(self.options)), bounds=Bounds(0, 1),
                          constraints=[LinearConstraint(self.one_each, 1, 1),
                                       LinearConstraint(self.sensitivities[None, :], 0, budget)],
                          options={"mip_rel_gap": 0.0, "time_limit": PROGRAM_SECONDS})
            if result.x is None:  # no solution within the time limit: the budget fits the start choices
                self._picks[budget] = dict(self.fallback)
            else:
                self._picks[budget] = {self.options[i][0]: self.options[i][1] for i in np.flatnonzero(result.x > 0.5)}
        return self._picks[budget]


def sensitivity_start(space: SearchSpace, outcomes: Mapping, key: Callable[[dict[str, Choice]], str],
                      cache: dict[str, SensitivityProgram]
                      ) -> tuple[dict[str, Choice] | None, list[dict[str, Choice]], bool]:
    """(the start, [], False) once known; else (None, what to evaluate next, whether those are
    probes). ``outcomes`` maps keys (probes under their prefix) to the samplers' outcomes;
    ``cache`` keeps the program of the last probe outcomes between calls."""
    singles = probes(space)
    pending = [p for p in singles if PROBE_PREFIX + key(p) not in outcomes]
    if pending:
        return None, pending, True
    precise, floor = singles[0], outcomes[PROBE_PREFIX + key(singles[0])].sensitivity
    measured: dict[str, dict[Choice, float]] = {unit.name: {} for unit in space.units}
    for probe in singles[1:]:
        unit, choice = next((n, c) for n, c in probe.items() if c != space.start)
        measured[unit][choice] = outcomes[PROBE_PREFIX + key(probe)].sensitivity - floor
    sensitivities = {unit.name: monotone(space, scaled(space, unit, measured[unit.name])) for unit in space.units}
    signature = repr(sorted((unit, sorted(by_choice.items())) for unit, by_choice in sensitivities.items()))
    if signature not in cache:
        cache.clear()
        cache[signature] = SensitivityProgram(space, sensitivities)
    program = cache[signature]
    best = precise
    low, high = program.smallest_budget, program.largest_budget
    budget = high
    for step in range(BISECTION_STEPS + 1):
        pick = program.pick(budget)
        outcome = outcomes.get(key(pick))
        if outcome is None:
            return None, [pick], False
        if outcome.feasible:
            best = min(best, pick, key=space.cost)
            if step == 0:
                break  # every unit at its cheapest choice, and feasible together
            low = budget
        else:
            high = budget
        if not 0 < low < high:
            break
        budget = math.sqrt(low * high)
    return best, [], False
