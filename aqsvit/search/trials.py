"""What makes a trial feasible, and the constraints optuna-dashboard reads: one small public module
the search, the report, the dashboard and fine-tuning share, so none of them reaches into a
sampler's internals (the attribute names: :mod:`aqsvit.search.vocabulary`)."""
from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from aqsvit.search.vocabulary import DASHBOARD_CONSTRAINTS, SCREEN_ONLY


def is_feasible(trial: FrozenTrial) -> bool:
    """A COMPLETE trial whose constraints all hold (Optuna's convention: each value <= 0). The named
    constraints decide when a trial has any: the dashboard's list form also marks screened results."""
    constraints = trial.constraints
    named = [v for k, v in constraints.items() if not k.isdigit()]
    return trial.state == TrialState.COMPLETE and all(v <= 0 for v in (named or constraints.values()))


def dashboard_constraints(accuracy: float, screened: bool) -> list[float]:
    """The accuracy constraint in the list form optuna-dashboard reads: ``[drop - delta]`` for a
    measured trial; a screened one (an upper bound on the accuracy) gets ``SCREEN_ONLY`` as a second
    entry, so the dashboard draws it as infeasible, apart from the measured front and its verification."""
    return [accuracy, SCREEN_ONLY] if screened else [accuracy]


def set_dashboard_constraints(trial: optuna.Trial, accuracy: float, screened: bool) -> None:
    """Write :func:`dashboard_constraints` where optuna-dashboard reads them."""
    trial.storage.set_trial_system_attr(trial._trial_id, DASHBOARD_CONSTRAINTS, dashboard_constraints(accuracy, screened))
