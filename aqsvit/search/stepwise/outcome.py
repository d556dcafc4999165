"""The walk's outcome logic, apart from any study: what the trials in storage say about each
assignment (:func:`read_trials`), how screened outcomes are judged against the reserve
(:func:`judge`, at the study's own constraint or at any Δ of a front search), and one greedy step
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
from aqsvit.search.vocabulary import (AT_PREFIX, BUDGET_ATTR, BUDGETS_ATTR, DELTA_ATTR, DRIFT_ATTR, DROP_ATTR,
                                      ERRORS_ATTR, IDLE_ATTR, MEASURED_AT_ATTR, OUTRANKED, PROBE_PREFIX,
                                      PRUNED_BY_ATTR, SCREENED_ATTR, SENSITIVITY_ATTR, VERIFY_PREFIX)

LIVE = (TrialState.RUNNING, TrialState.WAITING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ROUNDING = 1e-9  # a drop equal to delta up to float rounding is within it (as the objective's constraint)


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
    # what a front search judges at each of its deltas: the drop of each COMPLETE outcome measured on the
    # whole split (verifications under the verified key) and each screened key's budget per delta
    drops: dict[str, float] = field(default_factory=dict)
    budgets: dict[str, dict[float, int]] = field(default_factory=dict)
    verified_at: dict[str, float] = field(default_factory=dict)  # key -> the front's delta whose walk verified it
    stopped: dict[str, float] = field(default_factory=dict)  # key -> the delta its staged check stopped at
    # (a front's walk measures against the delta it walks: a looser one knows nothing from that stop)


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
    key = measured_key(key)  # measured again for a looser delta: what it says replaces the earlier stop
    feasible = is_feasible(trial)
    drift = float(trial.user_attrs.get(DRIFT_ATTR, 0.0))
    attrs = trial.user_attrs
    measured = trial.state == TrialState.COMPLETE and DROP_ATTR in attrs and not attrs.get(SCREENED_ATTR)
    if key.startswith(PROBE_PREFIX):  # measured for its drift only, whatever its state
        readings.decided[key] = Outcome(feasible, drift, sensitivity=float(attrs.get(SENSITIVITY_ATTR, drift)))
    elif key.startswith(VERIFY_PREFIX):
        verified = key[len(VERIFY_PREFIX):]
        readings.verified[verified] = (feasible, attrs.get(ERRORS_ATTR))
        if DELTA_ATTR in trial.system_attrs:
            readings.verified_at[verified] = float(trial.system_attrs[DELTA_ATTR])
        else:
            readings.verified_at.pop(verified, None)
        _keep_drop(readings, verified, float(attrs[DROP_ATTR]) if measured else None)
    elif feasible and attrs.get(SCREENED_ATTR):
        readings.screened[key] = (int(attrs[ERRORS_ATTR]), int(attrs[BUDGET_ATTR]), drift)
        if BUDGETS_ATTR in attrs:
            readings.budgets[key] = {float(delta): int(budget) for delta, budget in attrs[BUDGETS_ATTR]}
        else:
            readings.budgets.pop(key, None)
    elif attrs.get(PRUNED_BY_ATTR) == OUTRANKED:
        readings.outranked[key] = drift
    else:
        readings.decided[key] = Outcome(feasible, drift)
        _keep_drop(readings, key, float(attrs[DROP_ATTR]) if measured else None)
        if MEASURED_AT_ATTR in attrs and not feasible:
            readings.stopped[key] = float(attrs[MEASURED_AT_ATTR])
        else:
            readings.stopped.pop(key, None)
    return key


def at_key(delta: float, key: str) -> str:
    """The claim of ``key`` measured again for the looser ``delta`` (its first measurement stopped below it)."""
    return f"{AT_PREFIX}{delta!r}:{key}"


def measured_key(key: str) -> str:
    """The assignment key a claim measures (:func:`at_key` undone; any other key as it is)."""
    return key.split(":", 1)[1] if key.startswith(AT_PREFIX) else key


def _keep_drop(readings: Readings, key: str, drop: float | None) -> None:
    """Record the whole split's ``drop`` of ``key`` (None: not measured whole, e.g. stopped)."""
    if drop is None:
        readings.drops.pop(key, None)
    else:
        readings.drops[key] = drop


def reserve(readings: Readings, delta: float | None = None) -> int:
    """The most errors any verified assignment made outside its screen (0 until one shows more);
    at a front's ``delta``, of the verifications its walks up to ``delta`` asked for: a looser
    walk's aggressive candidates, which miss more of a screen, do not reopen a tighter walk."""
    screened, at = readings.screened, readings.verified_at
    return max((errors - screened[key][0] for key, (_, errors) in readings.verified.items()
                if key in screened and errors is not None
                and (delta is None or at.get(key) is None or at[key] <= delta + ROUNDING)), default=0)


def judge(readings: Readings, delta: float | None = None) -> tuple[dict[str, Outcome], set[str]]:
    """Outcomes by key (screened ones judged against the :func:`reserve`, verified ones exact)
    and the keys whose screen left them undecided (to verify on the whole split).

    - a screened key with a verification takes the verification's feasibility (exact);
    - else it is accepted on the screen (inexact) while ``errors <= budget - reserve``, else undecided;
    - an outranked key is infeasible while no verification has failed (reserve 0), else undecided
      unless it was itself measured on the whole split.

    With ``delta`` (a front search, whose trials are measured against the delta of the walk that
    claimed them), an outcome measured on the whole split is feasible when its drop is at most ``delta``, and a
    screened one is judged against its budget at ``delta``: infeasible (exactly) when the screen
    alone saw more errors than that budget; a stopped outcome is infeasible up to the delta its
    staged check stopped at and unknown above it (measured again there, :func:`at_key`)."""
    def feasible(key: str, recorded: bool) -> bool:
        drop = readings.drops.get(key) if delta is not None else None
        return recorded if drop is None else drop <= delta + ROUNDING

    outcomes = dict(readings.decided)  # a copy: O(study) but cheap (rebuilding every Outcome was 7 ms at 10,000)
    if delta is not None:
        for key, at in readings.stopped.items():
            if at < delta - ROUNDING:
                outcomes.pop(key, None)
        for key in readings.drops.keys() & outcomes.keys():
            o = outcomes[key]
            outcomes[key] = Outcome(feasible(key, o.feasible), o.drift, o.exact, o.sensitivity)
    screened, verified = readings.screened, readings.verified
    held_back = reserve(readings, delta)
    undecided = set()
    for key, (errors, budget, drift) in screened.items():
        if delta is not None:
            budget = readings.budgets.get(key, {}).get(delta, budget)
        if key in verified:
            outcomes[key] = Outcome(feasible(key, verified[key][0]), drift)
        elif errors > budget:  # a front's tighter delta: more wrong on the screen alone than it allows
            outcomes[key] = Outcome(False, drift)
        elif errors <= budget - held_back:
            outcomes[key] = Outcome(True, drift, exact=False)
        else:
            undecided.add(key)
    for key, drift in readings.outranked.items():
        if key in verified:  # measured on the whole split while undecided
            outcomes[key] = Outcome(feasible(key, verified[key][0]), drift)
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
