"""The ledger's incremental readings equal read_trials over the whole study, whatever the order in
which trials start, claim, finish or fail."""
from __future__ import annotations

import random

import pytest
from optuna.trial import TrialState, create_trial

from aqsvit.search.stepwise.ledger import Ledger
from aqsvit.search.stepwise.outcome import FINISHED, LIVE, read_trials
from aqsvit.search.vocabulary import (BUDGET_ATTR, DRIFT_ATTR, ERRORS_ATTR, IDLE_ATTR, KEY_ATTR, OUTRANKED,
                                      PROBE_PREFIX, PRUNED_BY_ATTR, SCREENED_ATTR, VERIFY_PREFIX)


def key_of(trial):
    return trial.system_attrs.get(KEY_ATTR)


def brute_holders(trials, key):
    return sorted(t._trial_id for t in trials if t.state in (*LIVE, *FINISHED)
                  and not t.system_attrs.get(IDLE_ATTR) and key_of(t) == key)


def finish(trial, rng):
    """What a worker's tell writes, at random: a plain outcome, a screen, a verification, a probe,
    an outranked prune, an idle end or a failure."""
    kind = rng.choice(["plain", "screened", "outranked", "idle", "fail", "plain"])
    key = trial.system_attrs.get(KEY_ATTR) or ""
    trial.user_attrs[DRIFT_ATTR] = rng.random()
    if kind == "fail":
        trial.state = TrialState.FAIL
        return
    trial.state = rng.choice([TrialState.COMPLETE, TrialState.PRUNED])
    feasible = rng.random() < 0.6
    trial.set_constraint("accuracy", -1.0 if feasible else 1.0)
    if kind == "screened" and not key.startswith((PROBE_PREFIX, VERIFY_PREFIX)):
        trial.user_attrs.update({SCREENED_ATTR: True, ERRORS_ATTR: rng.randrange(5), BUDGET_ATTR: 4})
    elif kind == "outranked":
        trial.user_attrs[PRUNED_BY_ATTR] = OUTRANKED
    elif kind == "idle":
        trial.system_attrs[IDLE_ATTR] = True
    if key.startswith(VERIFY_PREFIX):
        trial.user_attrs[ERRORS_ATTR] = rng.randrange(8)


@pytest.mark.parametrize("seed", range(8))
def test_the_ledger_reads_what_read_trials_reads(seed):
    """Several 'workers' create trials, claim keys (some twice: taken-over trials), finish them out
    of number order; after every event the ledger's readings and holders equal a whole read."""
    rng = random.Random(seed)
    keys = ["a", "b", "c", "d", PROBE_PREFIX + "a", PROBE_PREFIX + "b", VERIFY_PREFIX + "a", VERIFY_PREFIX + "c"]
    trials, ledger = [], Ledger(key_of)
    for _ in range(300):
        live = [t for t in trials if t.state in LIVE]
        event = rng.random()
        if event < 0.35 or not live:
            t = create_trial(state=TrialState.RUNNING)
            t.number = t._trial_id = len(trials)
            trials.append(t)
        elif event < 0.7:
            rng.choice(live).system_attrs[KEY_ATTR] = rng.choice(keys)
        else:
            finish(rng.choice(live), rng)
        got, want = ledger.read(trials), read_trials(trials, key_of)
        assert got == want
        for key in keys:  # a claim stands when no trial but its own holds the key
            for own in [None, *(t._trial_id for t in trials if t.state in LIVE)]:
                assert bool(set(ledger.holders(trials, key)) - {own}) == bool(set(brute_holders(trials, key)) - {own})


def test_a_list_that_is_not_a_whole_study_is_refused():
    trials = [create_trial(state=TrialState.RUNNING) for _ in range(3)]
    for number, t in enumerate(trials):
        t.number = t._trial_id = number
    ledger = Ledger(key_of)
    ledger.read(trials)
    with pytest.raises(ValueError, match="all of one study's trials"):
        ledger.read(trials[1:])
    with pytest.raises(ValueError, match="all of one study's trials"):
        ledger.read(trials[:2])
