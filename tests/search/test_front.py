"""The measured front of a study and the pick for a Δ chosen afterwards, on real Optuna trials."""
from __future__ import annotations

import optuna
from optuna.trial import TrialState, create_trial

from aqsvit.search.front import front, pick

FP = 98.0


def trial(accuracy: float, memory: float, screened: bool = False, state=TrialState.COMPLETE):
    attrs = {"drop": FP - accuracy, **({"screened": True} if screened else {})}
    values = [accuracy, memory] if state == TrialState.COMPLETE else None
    return create_trial(state=state, values=values, user_attrs=attrs,
                        params={}, distributions={})


def study_of(*trials) -> list:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for t in trials:
        study.add_trial(t)
    return study.trials


def test_front_keeps_measured_points_no_other_beats():
    trials = study_of(trial(97.5, 100), trial(97.9, 300), trial(97.0, 120), trial(99.0, 90, screened=True),
                      trial(96.0, 50), trial(97.9, 300), trial(95.0, 60))
    assert [(t.values[0], t.values[1]) for t in front(trials)] == [(96.0, 50), (97.5, 100), (97.9, 300)]
    assert front(trials)[-1].number == 1  # a repeated point: the earliest trial


def test_pick_is_the_smallest_within_delta_and_never_a_screened_bound():
    trials = study_of(trial(97.5, 100), trial(97.9, 300), trial(99.0, 20, screened=True), trial(96.0, 50),
                      trial(97.5, 100))
    assert pick(trials, 0.5).values == [97.5, 100]
    assert pick(trials, 0.5).number == 0
    assert pick(trials, 2.0).values == [96.0, 50]
    assert pick(trials, 0.05) is None
