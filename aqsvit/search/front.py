"""The accuracy-memory front a study holds, and the pick for a Δ chosen after the search.

Only trials measured on the whole evaluation split count (COMPLETE and not decided on the screen
alone: a screened accuracy is an upper bound). Picking reads the stored trials and evaluates nothing.
"""
from __future__ import annotations

from collections.abc import Iterable

from optuna.trial import FrozenTrial, TrialState

from aqsvit.search.vocabulary import DROP_ATTR, SCREENED_ATTR

FRONT_KEY, DELTA_KEY = "front", "delta"  # where a study's context and fingerprint record the deltas searched for


def measured(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """COMPLETE trials whose accuracy was measured on the whole evaluation split."""
    return [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None
            and not t.user_attrs.get(SCREENED_ATTR) and DROP_ATTR in t.user_attrs]


def front(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The measured trials no other measured trial beats on both accuracy and memory, least memory
    first (one trial per distinct point: the earliest)."""
    ordered = sorted(measured(trials), key=lambda t: (t.values[1], -t.values[0], t.number))
    points, best_accuracy = [], float("-inf")
    for trial in ordered:
        if trial.values[0] > best_accuracy:
            points.append(trial)
            best_accuracy = trial.values[0]
    return points


def pick(trials: Iterable[FrozenTrial], delta: float) -> FrozenTrial | None:
    """The least-memory measured trial whose accuracy drop is at most ``delta`` points (ties: the more
    accurate); None when the study holds none."""
    within = [t for t in measured(trials) if float(t.user_attrs[DROP_ATTR]) <= delta]
    return min(within, key=lambda t: (t.values[1], -t.values[0], t.number), default=None)


def answered(context: dict) -> list[float]:
    """The deltas a study searched for, from its context user attr (a front's, else its one delta)."""
    if context.get(FRONT_KEY):
        return [float(d) for d in context[FRONT_KEY]]
    return [float(context[DELTA_KEY])] if DELTA_KEY in context else []


def stored_choices(trial: FrozenTrial) -> dict[str, tuple[str, int]]:
    """A trial's assignment from its parameters (``<unit>.scheme``, ``<unit>.bits``), in their order."""
    units = [name[: -len(".scheme")] for name in trial.params if name.endswith(".scheme")]
    return {unit: (str(trial.params[f"{unit}.scheme"]), int(trial.params[f"{unit}.bits"])) for unit in units}
