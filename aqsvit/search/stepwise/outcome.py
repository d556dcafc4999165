"""The walk's outcome logic, apart from any study: what the trials in storage say about each
assignment (:func:`read_trials`), how screened outcomes are judged against the reserve
(:func:`judge`), and one greedy step
over options in preference order (:func:`first_feasible`).

Every function here is pure: :func:`read_trials` takes finished or live ``FrozenTrial`` objects
(``optuna.trial.create_trial`` makes them without a study), :func:`judge` plain dicts. See
:mod:`aqsvit.search.stepwise.base` for what screens, verifications, probes and outranked
candidates are.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial, TrialState

from aqsvit.search.space import Choice
from aqsvit.search.trials import is_feasible
from aqsvit.search.vocabulary import (AT_PREFIX, BUDGET_ATTR, DRIFT_ATTR, ERRORS_ATTR, IDLE_ATTR, OUTRANKED,
                                      PROBE_PREFIX, PRUNED_BY_ATTR, SCREENED_ATTR, SENSITIVITY_ATTR, VERIFY_PREFIX)

LIVE = (TrialState.RUNNING, TrialState.WAITING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Outcome:
    """What storage knows about one evaluated assignment."""

    feasible: bool
    drift: float
    exact: bool = True  # False: decided on a screen of the evaluation split, not yet verified
    sensitivity: float = 0.0  # a probe's: what the sensitivity start sums (user attr, else the drift)


@dataclass
class Plan:
    """Next assignments to evaluate (in preference order), or the finished result."""

    proposals: list[dict[str, Choice]] = field(default_factory=list)
    result: dict[str, Choice] | None = None
    probes: bool = False  # the proposals are probes: claimed as such, measured for their sensitivity only


@dataclass
class Readings:
    """The finished trials sorted by what the walk reads from them (by assignment key), and the
    trial id holding each claim (verifications and probes under their prefixed key)."""

    decided: dict[str, Outcome] = field(default_factory=dict)  # probes, and outcomes measured on the whole split
    screened: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # key -> (errors, budget, drift)
    outranked: dict[str, float] = field(default_factory=dict)  # key -> drift
    verified: dict[str, tuple[bool, int | None]] = field(default_factory=dict)  # key -> (feasible, errors seen)
    claims: MutableMapping[str, int] = field(default_factory=dict)


def read_trials(trials: Iterable[FrozenTrial], key_of: Callable[[FrozenTrial], str | None]) -> Readings:
    """Sort ``trials`` (``key_of``: the assignment key a trial evaluates, None for none) into
    :class:`Readings`. Idle trials and trials without a key are skipped; a live trial only claims
    (the first live claim counts, a finished trial's always: the last in ``trials``' order)."""
    out = Readings()
    for t in trials:
        if t.state in LIVE:
            claim_live(out, t, key_of)
        else:
            fold_finished(out, t, key_of)
    return out


def held_key(trial: FrozenTrial, key_of: Callable[[FrozenTrial], str | None]) -> str | None:
    """The key ``trial`` holds, a live or finished trial: its key, unless it has none or is idle."""
    key = key_of(trial)
    return None if key is None or trial.system_attrs.get(IDLE_ATTR) else key


def claim_live(readings: Readings, trial: FrozenTrial, key_of: Callable[[FrozenTrial], str | None]) -> None:
    """Record the claim of ``trial``, a live trial, unless an earlier trial holds its key."""
    key = held_key(trial, key_of)
    if key is not None:
        readings.claims.setdefault(key, trial._trial_id)


def fold_finished(readings: Readings, trial: FrozenTrial, key_of: Callable[[FrozenTrial], str | None]) -> str | None:
    """Add what ``trial``, a finished trial, says to ``readings`` (replacing what an earlier trial
    of its key said); return its key, None where it says nothing (FAIL, idle, no key)."""
    key = held_key(trial, key_of) if trial.state in FINISHED else None
    if key is None:
        return None
    readings.claims[key] = trial._trial_id
    feasible = is_feasible(trial)
    drift = float(trial.user_attrs.get(DRIFT_ATTR, 0.0))
    attrs = trial.user_attrs
    if key.startswith(PROBE_PREFIX):  # measured for its drift only, whatever its state
        readings.decided[key] = Outcome(feasible, drift, sensitivity=float(attrs.get(SENSITIVITY_ATTR, drift)))
    elif key.startswith(VERIFY_PREFIX):
        readings.verified[key[len(VERIFY_PREFIX):]] = (feasible, attrs.get(ERRORS_ATTR))
    elif feasible and attrs.get(SCREENED_ATTR):
        readings.screened[key] = (int(attrs[ERRORS_ATTR]), int(attrs[BUDGET_ATTR]), drift)
    elif attrs.get(PRUNED_BY_ATTR) == OUTRANKED:
        readings.outranked[key] = drift
    else:
        readings.decided[key] = Outcome(feasible, drift)
    return key


def at_key(delta: float, key: str) -> str:
    """The claim of ``key`` by a front's walk for ``delta`` (a probe's claim, measured once for
    every delta, has no such prefix)."""
    return key if key.startswith(PROBE_PREFIX) else f"{AT_PREFIX}{delta!r}:{key}"


def walk_key(delta: float, claim: str) -> str | None:
    """What the front's walk for ``delta`` reads a claim as (:func:`at_key` undone): the key of
    its own claims and of every probe, None for another delta's claims."""
    if claim.startswith(PROBE_PREFIX):
        return claim
    prefix = f"{AT_PREFIX}{delta!r}:"
    return claim[len(prefix):] if claim.startswith(prefix) else None


def reserve(readings: Readings) -> int:
    """The most errors any verified assignment made outside its screen (0 until one shows more)."""
    screened = readings.screened
    return max((errors - screened[key][0] for key, (_, errors) in readings.verified.items()
                if key in screened and errors is not None), default=0)


def judge(readings: Readings) -> tuple[dict[str, Outcome], set[str]]:
    """Outcomes by key (screened ones judged against the :func:`reserve`, verified ones exact)
    and the keys whose screen left them undecided (to verify on the whole split).

    - a screened key with a verification takes the verification's feasibility (exact);
    - else it is accepted on the screen (inexact) while ``errors <= budget - reserve``, else undecided;
    - an outranked key is infeasible while no verification has failed (reserve 0), else undecided
      unless it was itself measured on the whole split."""
    outcomes = dict(readings.decided)  # a copy: O(study) but cheap (rebuilding every Outcome was 7 ms at 10,000)
    screened, verified = readings.screened, readings.verified
    held_back = reserve(readings)
    undecided = set()
    for key, (errors, budget, drift) in screened.items():
        if key in verified:
            outcomes[key] = Outcome(verified[key][0], drift)
        elif errors <= budget - held_back:
            outcomes[key] = Outcome(True, drift, exact=False)
        else:
            undecided.add(key)
    for key, drift in readings.outranked.items():
        if key in verified:  # measured on the whole split while undecided
            outcomes[key] = Outcome(verified[key][0], drift)
        elif held_back == 0:
            outcomes[key] = Outcome(False, drift)
        else:
            undecided.add(key)
    return outcomes, undecided


def first_feasible(options: Sequence[dict[str, Choice]], outcomes: dict[str, Outcome],
                   key: Callable[[dict[str, Choice]], str]) -> tuple[dict[str, Choice] | None, list[dict[str, Choice]]]:
    """One greedy step over ``options`` in preference order: the first feasible one once every
    option before it is known infeasible, and the unknown options before the first known-feasible
    one (to evaluate first; the chosen one is None while there are any)."""
    pending = []
    for option in options:
        outcome = outcomes.get(key(option))
        if outcome is None:
            pending.append(option)
        elif outcome.feasible:
            return (None if pending else option), pending
    return None, pending
