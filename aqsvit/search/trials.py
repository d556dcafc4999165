"""The trial vocabulary the search writes and the report, the dashboard and fine-tuning read:
attribute names and what makes a trial feasible. One small public module, so none of them reaches
into a sampler's internals."""
from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

KEY_ATTR = "aqsvit:key"
PARAMS_ATTR = "aqsvit:params"
IDLE_ATTR = "aqsvit:idle"
VERIFY_ATTR = "aqsvit:verify"
VERIFY_PREFIX = "verify:"
PROBE_ATTR = "aqsvit:probe"  # the sampler wants only the sensitivity of this trial's assignment (first batch)
PROBE_PREFIX = "probe:"
PROBED = "probe"  # pruned_by: a probe, stopped on purpose once its sensitivity was measured
OUTRANKED = "outranked"  # pruned_by: the drift lost every place the candidate could take (beam ties)
DASHBOARD_CONSTRAINTS = "constraints"  # the list form optuna-dashboard 0.21 reads (Optuna reads it as "0", "1"...)
SCREEN_ONLY = 1.0  # the dashboard's second constraint of a result decided on the screen only: apart from the front


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
