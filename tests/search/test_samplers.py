"""GreedySampler and BeamSampler as plain Optuna samplers: a cheap synthetic objective, no model."""
from __future__ import annotations

import itertools

import optuna
import pytest
from optuna.trial import TrialState

from aqsvit.errors import AqsvitError
from aqsvit.proxy.drift import DriftStep
from aqsvit.search import BeamSampler, DriftPruner, GreedySampler, SearchSpace
from aqsvit.search.vocabulary import (DELTA_ATTR, IDLE_ATTR, KEY_ATTR, OUTRANKED, PROBE_ATTR, PROBE_PREFIX, VERIFY_ATTR,
                                      VERIFY_PREFIX)

SIZES = {"stem": 40, "attn": 300, "mlp": 500, "head": 20}
SENSITIVITY = {"stem": 2.0, "attn": 0.5, "mlp": 0.3, "head": 1.5}
LIMIT = 1.6


def error(space, choices):
    return sum(SENSITIVITY[u] * 2.0 ** -(space.choice_bits(c) - 2) * (1.3 if c[0] == "pot" else 1.0)
               for u, c in choices.items())


def make_objective(space, limit=LIMIT):
    def objective(trial):
        choices = space.suggest(trial)
        err = error(space, choices)
        trial.set_constraint("error", err - limit)
        return -err, space.cost(choices)
    return objective


def sensitivity_objective(space, limit=LIMIT):
    """make_objective's, also recording the error as the ``sensitivity`` the probes are read by."""
    def objective(trial):
        choices = space.suggest(trial)
        err = error(space, choices)
        trial.set_user_attr("sensitivity", err)
        trial.set_constraint("error", err - limit)
        return -err, space.cost(choices)
    return objective


def run(sampler, space):
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(make_objective(space), n_trials=1000)
    return study


@pytest.mark.parametrize("make", [GreedySampler, lambda s: BeamSampler(s, width=3)])
def test_stepwise_samplers_find_a_feasible_local_optimum_and_stop_by_themselves(make):
    space = SearchSpace.from_units(SIZES)
    sampler = make(space)
    study = run(sampler, space)
    real = [t for t in study.trials if not t.system_attrs.get(IDLE_ATTR)]
    assert len(real) < 1000 and len(real) <= len(SIZES) * 3 * (len(space.candidates()) + 1)
    keys = [t.system_attrs[KEY_ATTR] for t in real]
    assert len(keys) == len(set(keys)), "an assignment was evaluated twice"
    result = sampler.result(study)
    assert error(space, result) <= LIMIT
    # no single unit can go one candidate cheaper and stay feasible (the error only grows)
    cands = space.candidates()
    for unit, choice in result.items():
        cheaper = [c for c in cands if space.choice_bits(c) < space.choice_bits(choice)]
        for c in cheaper:
            assert error(space, {**result, unit: c}) > LIMIT
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


def test_beam_finds_at_most_the_memory_of_greedy_and_resumes_to_the_same_result():
    space = SearchSpace.from_units(SIZES)
    greedy = GreedySampler(space)
    g = run(greedy, space)
    beam = BeamSampler(space, width=3)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=beam, storage=storage)
    study.optimize(make_objective(space), n_trials=7)  # interrupted
    assert beam.result(study) is None
    resumed = optuna.load_study(study_name=study.study_name, storage=storage, sampler=BeamSampler(space, width=3))
    resumed.optimize(make_objective(space), n_trials=1000)
    b_result = resumed.sampler.result(resumed)
    assert space.cost(b_result) <= space.cost(greedy.result(g))
    uninterrupted = BeamSampler(space, width=3)
    assert uninterrupted.result(run(uninterrupted, space)) == b_result


@pytest.mark.parametrize("make", [GreedySampler, lambda s, **kw: BeamSampler(s, width=2, **kw)])
def test_one_width_start_walks_below_the_cheapest_feasible_width_and_resumes(make):
    space = SearchSpace.from_units(SIZES)
    widths = space.candidates()
    start = next(c for c in widths if error(space, space.uniform(c)) <= LIMIT)
    assert start != widths[0], "the cheapest width is feasible: the case tests nothing"
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(directions=["maximize", "minimize"], storage=storage,
                                sampler=make(space, start="one_width"))
    study.optimize(make_objective(space), n_trials=2)  # interrupted inside the one-width step
    resumed = optuna.load_study(study_name=study.study_name, storage=storage,
                                sampler=make(space, start="one_width"))
    resumed.optimize(make_objective(space), n_trials=1000)
    real = [t for t in resumed.trials if not t.system_attrs.get(IDLE_ATTR)]
    tried = [space.choices_from_params(t.params) for t in real]
    # one width for all, cheapest first, up to the first feasible one; then the walk below it
    assert tried[:widths.index(start) + 1] == [space.uniform(c) for c in widths[:widths.index(start) + 1]]
    result = resumed.sampler.result(resumed)
    assert error(space, result) <= LIMIT
    assert all(space.choice_bits(c) <= space.choice_bits(start) for c in result.values())
    assert space.cost(result) < space.cost(space.uniform(start)), "the walk never went below the start"
    for unit, choice in result.items():
        assert all(error(space, {**result, unit: c}) > LIMIT for c in space.candidates(below=choice))
    keys = [t.system_attrs[KEY_ATTR] for t in real]
    assert len(keys) == len(set(keys)), "an assignment was evaluated twice"


def test_one_width_start_falls_back_to_the_precise_start_when_no_width_is_feasible():
    space = SearchSpace.from_units(SIZES)
    limit = 0.2  # below every one width's error but the widest (the precise start)
    assert all(error(space, space.uniform(c)) > limit for c in space.candidates())
    results = {}
    for start in ("precise", "one_width"):
        sampler = GreedySampler(space, start=start)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        study.optimize(make_objective(space, limit), n_trials=1000)
        results[start] = sampler.result(study)
    assert results["one_width"] == results["precise"] != space.uniform(space.start)


@pytest.mark.parametrize("sampler_class", [GreedySampler, BeamSampler])
def test_auto_start_walks_from_sensitivities_up_to_the_probe_limit_and_from_one_width_above(sampler_class,
                                                                                          monkeypatch):
    from aqsvit.search.stepwise import starts

    units = 12
    monkeypatch.setattr(starts, "AUTO_MAX_PROBES", 1 + units * 3)  # 3 candidates below 8 bits

    def objective(space, limit):
        def run(trial):
            choices = space.suggest(trial)
            err = sum((1 + i % 3) * 2.0 ** -(space.choice_bits(choices[u.name]) - 2) for i, u in enumerate(space.units))
            trial.set_user_attr("sensitivity", err)
            trial.set_constraint("error", err - limit)
            return -err, space.cost(choices)
        return run

    for units, expected, other in ((units, "sensitivity", "one_width"), (units + 1, "one_width", "sensitivity")):
        space = SearchSpace.from_units({f"layer{i}": 100 + i for i in range(units)}, ("uniform",), (8, 4, 3, 2))
        trials = {}
        for start in ("auto", expected, other):
            study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler_class(space, start=start))
            study.optimize(objective(space, 0.6 * units), n_trials=400)  # all at 4 bits fits, all at 3 does not
            trials[start] = [t.params for t in study.trials]
        assert trials["auto"] == trials[expected] != trials[other]


def brute_force_cheapest(space, limit):
    import itertools
    choices = [space.start, *space.candidates()]
    best = None
    for combo in itertools.product(choices, repeat=len(space.units)):
        assignment = dict(zip((u.name for u in space.units), combo))
        if error(space, assignment) <= limit and (best is None or space.cost(assignment) < space.cost(best)):
            best = assignment
    return best


@pytest.mark.parametrize("make", [GreedySampler, lambda s, **kw: BeamSampler(s, width=2, **kw)])
def test_sensitivity_start_probes_each_unit_then_finds_the_cheapest_feasible_assignment(make):
    """With sensitivities that add up exactly (the synthetic error), the one-width step, the probes,
    the integer program and its bisection, then the walk, end at the cheapest feasible assignment
    of all 12^4; an interrupted study resumes to the same trials; the probes are marked."""
    space = SearchSpace.from_units(SIZES)

    objective = sensitivity_objective(space)

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(directions=["maximize", "minimize"], storage=storage,
                                sampler=make(space, start="sensitivity"))
    study.optimize(objective, n_trials=9)  # interrupted among the probes
    resumed = optuna.load_study(study_name=study.study_name, storage=storage, sampler=make(space, start="sensitivity"))
    resumed.optimize(objective, n_trials=1000)
    real = [t for t in resumed.trials if not t.system_attrs.get(IDLE_ATTR)]
    widths = space.candidates()
    first_width = next(i for i, c in enumerate(widths) if error(space, space.uniform(c)) <= LIMIT)
    tried = [space.choices_from_params(t.params) for t in real]
    assert tried[:first_width + 1] == [space.uniform(c) for c in widths[:first_width + 1]]
    probes = real[first_width + 1:first_width + 2 + len(SIZES) * len(widths)]
    assert tried[first_width + 1] == space.uniform(space.start)
    assert all(t.system_attrs[KEY_ATTR].startswith(PROBE_PREFIX) and t.system_attrs[PROBE_ATTR] for t in probes)
    assert sum(t.system_attrs[KEY_ATTR].startswith(PROBE_PREFIX) for t in real) == len(probes)
    result = resumed.sampler.result(resumed)
    assert result == brute_force_cheapest(space, LIMIT)
    greedy = GreedySampler(space)
    assert space.cost(result) < space.cost(greedy.result(run(greedy, space)))
    keys = [t.system_attrs[KEY_ATTR] for t in real]
    assert len(keys) == len(set(keys)), "an assignment was evaluated twice"
    fresh = optuna.create_study(directions=["maximize", "minimize"], sampler=make(space, start="sensitivity"))
    fresh.optimize(objective, n_trials=1000)
    assert [t.params for t in fresh.trials] == [t.params for t in resumed.trials]


def test_sensitivities_are_monotone_in_bits_within_a_scheme_and_never_negative():
    """One batch's noise (a cheaper choice measured below a wider one, a negative difference to
    the precise probe) is raised to what the wider choices of the same scheme measured."""
    from aqsvit.search.stepwise.sensitivity import monotone
    space = SearchSpace.from_units({"a": 10}, ("uniform", "pot"), (8, 4, 3, 2))
    measured = {("uniform", 4): -0.01, ("uniform", 3): 0.5, ("uniform", 2): 0.2,
                ("pot", 4): 0.3, ("pot", 3): 0.1, ("pot", 2): 0.9}
    assert monotone(space, measured) == {("uniform", 8): 0.0, ("uniform", 4): 0.0, ("uniform", 3): 0.5,
                                         ("uniform", 2): 0.5, ("pot", 4): 0.3, ("pot", 3): 0.3, ("pot", 2): 0.9}


def test_start_must_be_known():
    with pytest.raises(AqsvitError, match=r"search.start: got 'middle'; allowed: auto, precise, one_width, sensitivity"):
        GreedySampler(SearchSpace.from_units(SIZES), start="middle")


def test_enqueued_trial_counts_as_a_claim():
    space = SearchSpace.from_units(SIZES)
    sampler = GreedySampler(space)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    first = space.uniform(space.start) | {"stem": space.candidates()[-1]}
    study.enqueue_trial(space.params(first))
    study.optimize(make_objective(space), n_trials=200)
    keys = [t.system_attrs.get(KEY_ATTR) or space.key(space.choices_from_params(t.params))
            for t in study.trials if not t.system_attrs.get(IDLE_ATTR)]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("kwargs,match", [
    ({"schemes": ["int"]}, r"quant.schemes: got 'int'"),
    ({"bits": [9]}, r"quant.bits: got 9; allowed: integers 2..8"),
    ({"bits": []}, r"quant.bits: got \[\]"),
])
def test_bad_space_is_one_line(kwargs, match):
    args = {"sizes": SIZES} | kwargs
    with pytest.raises(AqsvitError, match=match):
        SearchSpace.from_units(**args)


def test_beam_width_must_be_positive():
    with pytest.raises(AqsvitError, match=r"sampler.width: got 0; allowed: integers >= 1"):
        BeamSampler(SearchSpace.from_units(SIZES), width=0)


def make_screening_objective(space, hidden, tie_gate=None):
    """Errors as the objective reports them: a screen sees ``error`` scaled to a count, and the
    whole split also sees ``hidden(choices)`` errors outside the screen (a verification trial).
    With a ``tie_gate`` (a DriftPruner), a screened candidate whose drift loses the beam's tie is
    pruned as outranked first, as the real objective does after its calibration forward."""
    budget = 16

    def objective(trial):
        choices = space.suggest(trial)
        seen = round(10 * error(space, choices))
        verify = trial.storage.get_trial_system_attrs(trial._trial_id).get(VERIFY_ATTR)
        if tie_gate is not None and not verify:
            trial.set_user_attr("drift", error(space, choices))
            step = DriftStep(0, 1, {tie_gate.definition: error(space, choices)}, {})
            if tie_gate.should_prune_step(trial.study, step, last=True, choices=choices):
                trial.set_user_attr("pruned_by", OUTRANKED)
                raise optuna.TrialPruned()
        errors = seen + (hidden(choices) if verify else 0)
        trial.set_user_attr("errors", errors)
        trial.set_user_attr("budget", budget)
        if errors > budget:
            raise optuna.TrialPruned()
        if not verify:
            trial.set_user_attr("screened", True)
        trial.set_constraint("errors", errors - budget)
        return -errors, space.cost(choices)
    return objective, budget


@pytest.mark.parametrize("make", [GreedySampler, lambda s: BeamSampler(s, width=2)])
def test_screened_results_are_verified_and_a_failed_verification_repairs_the_walk(make):
    space = SearchSpace.from_units(SIZES)
    # 2-bit attention hides two errors outside the screen: the screen alone would accept it
    hidden = lambda choices: 2 if space.choice_bits(choices["attn"]) <= 2 else 0  # noqa: E731
    objective, budget = make_screening_objective(space, hidden)
    sampler = make(space)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=1000)
    result = sampler.result(study)
    whole = round(10 * error(space, result)) + hidden(result)
    assert whole <= budget, "the final assignment breaks the constraint on the whole split"
    real = [t for t in study.trials if not t.system_attrs.get(IDLE_ATTR)]
    verifications = [t for t in real if t.system_attrs.get(VERIFY_ATTR)]
    assert any(t.state == TrialState.PRUNED for t in verifications), "no verification failed: the case tests nothing"
    final = [t for t in verifications if t.system_attrs[KEY_ATTR] == VERIFY_PREFIX + space.key(result)]
    assert len(final) == 1 and final[0].state == TrialState.COMPLETE
    keys = [t.system_attrs[KEY_ATTR] for t in real]
    assert len(keys) == len(set(keys)), "an assignment was screened or verified twice"
    # the screen alone (no hidden errors) would have kept a smaller, infeasible assignment
    plain = make(space)
    plain_study = optuna.create_study(directions=["maximize", "minimize"], sampler=plain)
    plain_study.optimize(make_screening_objective(space, lambda c: 0)[0], n_trials=1000)
    unverified = plain.result(plain_study)
    assert round(10 * error(space, unverified)) + hidden(unverified) > budget


def test_beam_verifies_outranked_children_once_a_verification_has_failed():
    """After a failed verification an outranked child is undecided (the screened outcomes that
    outranked it may be wrong): the beam measures it on the whole split and must then use that
    measurement. It once ignored it and waited forever on its own finished verification (now a
    RuntimeError: one worker with no other live trial has nobody to wait for)."""
    space = SearchSpace.from_units(SIZES)
    # 2-bit MLP hides three errors outside the screen: the beam's first result fails its verification
    hidden = lambda choices: 3 if space.choice_bits(choices["mlp"]) <= 2 else 0  # noqa: E731
    objective, budget = make_screening_objective(space, hidden, tie_gate=DriftPruner(delta=1.0))
    sampler = BeamSampler(space, width=2)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=1000)
    result = sampler.result(study)
    assert round(10 * error(space, result)) + hidden(result) <= budget
    real = [t for t in study.trials if not t.system_attrs.get(IDLE_ATTR)]
    outranked = {t.system_attrs[KEY_ATTR] for t in real if t.user_attrs.get("pruned_by") == OUTRANKED}
    verified = {t.system_attrs[KEY_ATTR][len(VERIFY_PREFIX):] for t in real if t.system_attrs.get(VERIFY_ATTR)}
    assert outranked & verified, "no outranked child was verified: the case tests nothing"
    keys = [t.system_attrs[KEY_ATTR] for t in real]
    assert len(keys) == len(set(keys)), "an assignment was screened or verified twice"


def test_enqueued_assignment_held_by_a_live_trial_becomes_a_fresh_proposal():
    space = SearchSpace.from_units(SIZES)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=GreedySampler(space))
    held = study.ask()  # stays RUNNING: it holds the first candidate
    held_choices = space.suggest(held)
    study.enqueue_trial(space.params(held_choices))  # e.g. a user's enqueue racing that worker
    duplicate = study.ask()
    assert space.suggest(duplicate) != held_choices, "the enqueued duplicate was evaluated again"


def test_beam_prunes_children_whose_drift_loses_the_tie_and_keeps_its_result():
    """Uniform and PoT at one width cost the same memory: the beam breaks such ties by drift, so
    the DriftPruner prunes a tied child whose drift already loses, before its evaluation."""
    space = SearchSpace.from_units(SIZES)
    pruner = DriftPruner(delta=1.0)

    def objective(trial, gate):
        choices = space.suggest(trial)
        err = error(space, choices)
        trial.set_user_attr("drift", err)
        step = DriftStep(0, 1, {pruner.definition: err}, {})
        if gate and pruner.should_prune_step(trial.study, step, last=True, choices=choices):
            trial.set_user_attr("pruned_by", OUTRANKED)
            raise optuna.TrialPruned()
        trial.set_constraint("error", err - LIMIT)
        return -err, space.cost(choices)

    results = {}
    for gate in (False, True):
        sampler = BeamSampler(space, width=2)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        study.optimize(lambda t: objective(t, gate), n_trials=1000)
        outranked = [t for t in study.trials if t.user_attrs.get("pruned_by") == OUTRANKED]
        results[gate] = (sampler.result(study), len(outranked))
    assert results[True][0] == results[False][0]
    assert results[True][1] > 0 and results[False][1] == 0


def test_feasibility_reads_named_constraints_and_the_list_form_alone():
    """The dashboard's list form marks a screened result (second entry 1) without changing what the
    samplers judge feasible; a trial with only the list form (Optuna's constraints_func) still counts."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from aqsvit.search.trials import is_feasible

    def trial(**attrs):
        return create_trial(values=[90.0, 1.0], params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                            system_attrs=attrs)
    assert is_feasible(trial(**{"constraints:accuracy": -0.2, "constraints": [-0.2, 1.0]}))
    assert not is_feasible(trial(**{"constraints:accuracy": 0.3, "constraints": [0.3]}))
    assert is_feasible(trial(constraints=[-0.1])) and not is_feasible(trial(constraints=[-0.1, 0.5]))


@pytest.mark.parametrize("make", [GreedySampler, lambda s: BeamSampler(s, width=3)])
def test_a_claim_lost_to_a_newer_trial_reads_again_instead_of_failing(make):
    """Issue 21: a rival trial created after this worker read the study took its proposal. The
    worker's read showed nobody else live, so it concluded that nothing could change and raised
    'every proposal is held by a finished trial'; it must read again and go on."""
    space = SearchSpace.from_units(SIZES)
    sampler = make(space)
    sampler.poll_interval = 0.01
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    storage, real_claim, rivals = study._storage, sampler._claim, {}

    def claim_after_a_rival(study_, trial_id, number, key, choices, *delta):
        if key not in rivals:  # the race, for every proposal of the first read: a rival trial
            rival = storage.create_new_trial(study._study_id)  # appears and claims the key first
            storage.set_trial_system_attr(rival, KEY_ATTR, key)
            rivals[key] = rival
            won = real_claim(study_, trial_id, number, key, choices, *delta)
            storage.set_trial_state_values(rival, TrialState.FAIL)  # and its worker dies
            return won
        return real_claim(study_, trial_id, number, key, choices, *delta)

    sampler._claim = claim_after_a_rival
    trial = study.ask()
    space.suggest(trial)  # the claim happens at the trial's first parameter of the space
    assert rivals, "no race happened: the case tests nothing"
    assert storage.get_trial_system_attrs(trial._trial_id).get(KEY_ATTR), "the worker claimed nothing"
    study.tell(trial, state=TrialState.FAIL)  # its claim must not hold the rest of the walk
    study.optimize(make_objective(space), n_trials=1000)
    assert sampler.result(study) is not None


@pytest.mark.parametrize("make", [GreedySampler, lambda s, **kw: BeamSampler(s, width=2, **kw)])
def test_parameters_outside_the_space_go_to_the_independent_sampler_and_n_trials_holds(make):
    """Issue 23: an objective that asks for none of the space's parameters claims nothing; every
    trial runs, sampled by the independent sampler exactly as that sampler alone would sample it."""
    space = SearchSpace.from_units(SIZES)

    def objective(trial):
        return trial.suggest_float("x", -1, 1) ** 2 + trial.suggest_int("y", 0, 9)

    study = optuna.create_study(sampler=make(space, independent_sampler=optuna.samplers.RandomSampler(seed=3)))
    study.optimize(objective, n_trials=10)
    alone = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    alone.optimize(objective, n_trials=10)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 10
    assert [t.params for t in study.trials] == [t.params for t in alone.trials]
    assert not any(KEY_ATTR in t.system_attrs or IDLE_ATTR in t.system_attrs for t in study.trials)


@pytest.mark.parametrize("make", [GreedySampler, lambda s: BeamSampler(s, width=2)])
def test_mixed_conditional_and_failing_objectives_keep_the_walk_and_its_result(make):
    """The space's parameters come from the claimed assignment, whatever else the objective asks:
    extra parameters, trials that skip the space (conditional), a NaN value and an exception on a
    candidate's first evaluation (FAIL: the candidate is proposed again). The walk ends where the
    plain objective's walk ends, and a trial claims only once it asks for a parameter of the space."""
    space = SearchSpace.from_units(SIZES)
    plain = make(space)
    plain_study = run(plain, space)
    failed_once: set[str] = set()
    inner = make_objective(space)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        if not trial.suggest_categorical("quantize", [True, False]):
            return lr, 0.0  # this trial never asks for the space
        claimed = trial.study._storage.get_trial_system_attrs(trial._trial_id).get(KEY_ATTR)
        assert claimed is None, "claimed before asking for a parameter of the space"
        values = inner(trial)
        key = trial.study._storage.get_trial_system_attrs(trial._trial_id)[KEY_ATTR]
        if len(failed_once) < 2 and key not in failed_once:
            failed_once.add(key)
            if len(failed_once) == 1:
                return float("nan"), values[1]
            raise ValueError("a transient failure")
        return values

    sampler = make(space)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=1000, catch=(ValueError,))
    assert sampler.result(study) == plain.result(plain_study)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 2 and states[-1] == TrialState.PRUNED, "the walk did not end"
    skipped = [t for t in study.trials if t.params.get("quantize") is False]
    assert skipped and all(t.state == TrialState.COMPLETE and KEY_ATTR not in t.system_attrs for t in skipped)
    real = [t for t in study.trials if t.params.get("quantize") and t.state != TrialState.FAIL
            and not t.system_attrs.get(IDLE_ATTR)]
    keys = [t.system_attrs[KEY_ATTR] for t in real]
    assert len(keys) == len(set(keys)), "an assignment was evaluated twice"
    assert set(keys) == {t.system_attrs[KEY_ATTR] for t in plain_study.trials if not t.system_attrs.get(IDLE_ATTR)}


def test_with_weight_noise_the_sensitivity_start_probes_the_cheapest_choice_of_each_scheme_and_scales_the_rest():
    """When a unit's sensitivity is its scale times its weight noise (the second-order form the
    scaling assumes, exact here), probing only each scheme's cheapest choice yields the sensitivities
    of probing all of them: the same cheapest feasible assignment of all 12^4, from 1 + 4 x 2 probes."""
    from dataclasses import replace

    from aqsvit.search.stepwise.sensitivity import probe_choices

    plain = SearchSpace.from_units(SIZES)

    def noise(choice):  # error()'s factor of a choice
        return 2.0 ** -(plain.choice_bits(choice) - 2) * (1.3 if choice[0] == "pot" else 1.0)

    space = replace(plain, units=tuple(
        replace(u, noise=tuple((c, noise(c) - noise(plain.start)) for c in (plain.start, *plain.candidates())))
        for u in plain.units))

    objective = sensitivity_objective(space)

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=GreedySampler(space, start="sensitivity"))
    study.optimize(objective, n_trials=1000)
    probes = [t for t in study.trials if t.system_attrs.get(KEY_ATTR, "").startswith(PROBE_PREFIX)]
    assert len(probes) == 1 + len(SIZES) * 2
    assert {c for t in probes for c in space.choices_from_params(t.params).values()} == \
        {space.start, ("uniform", 2), ("pot", 2)}
    assert study.sampler.result(study) == brute_force_cheapest(space, LIMIT)
    # what the program sums: every choice's sensitivity, read off the two probes alone
    from aqsvit.search.stepwise.sensitivity import scaled
    for unit in space.units:
        probed = {c: error(space, {unit.name: c}) - error(space, {unit.name: space.start}) for c in probe_choices(space)}
        exact = {c: error(space, {unit.name: c}) - error(space, {unit.name: space.start}) for c in space.candidates()}
        assert scaled(space, unit, probed) == pytest.approx(exact)


def test_weight_noise_is_the_squared_perturbation_against_the_start_choice():
    import torch

    from aqsvit.quant.quantizers import quantize

    torch.manual_seed(0)
    weights = {"a": torch.randn(4, 9), "b": torch.randn(8, 3)}
    space = SearchSpace.from_units({"a": 36, "b": 24}, ("uniform", "pot"), (8, 4, 2)).with_weight_noise(weights.get)
    for unit in space.units:
        noise = dict(unit.noise)
        w = weights[unit.name]
        assert noise[space.start] == 0.0
        for choice in space.candidates():
            assert noise[choice] == pytest.approx(float((quantize(w, *choice) - quantize(w, *space.start)).square().sum()))
        assert 0 < noise["uniform", 4] < noise["uniform", 2] and 0 < noise["pot", 4] < noise["pot", 2]


def test_an_outcome_measured_elsewhere_is_added_once_and_read_as_measured():
    """add_measured adds an outcome only where no trial holds its assignment (a second worker, or a
    resumed study, adds nothing), and the walk reads it instead of evaluating it."""
    space = SearchSpace.from_units(SIZES)
    storage = optuna.storages.InMemoryStorage()
    workers = [optuna.create_study(directions=["maximize", "minimize"], storage=storage, study_name="s",
                                   sampler=GreedySampler(space, start="one_width"), load_if_exists=True)
               for _ in range(2)]
    cheapest = space.uniform(space.candidates()[0])
    err = error(space, cheapest)
    measured = optuna.trial.create_trial(
        state=TrialState.COMPLETE, values=[-err, space.cost(cheapest)], params=space.params(cheapest),
        distributions=space.distributions(), constraints={"error": err - LIMIT}, user_attrs={"measured_by": "test"})
    assert [w.sampler.add_measured(w, measured) for w in workers] == [True, False]
    (kept,) = workers[0].trials  # the second worker saw it held and added nothing
    assert kept.state == TrialState.COMPLETE and kept.values == measured.values and kept.user_attrs == measured.user_attrs
    workers[0].optimize(make_objective(space), n_trials=1000)
    keys = [t.system_attrs.get(KEY_ATTR) for t in workers[0].trials if not t.system_attrs.get(IDLE_ATTR)]
    assert keys.count(space.key(cheapest)) == 1
    alone = run(GreedySampler(space, start="one_width"), space)  # the same walk measuring everything itself
    assert workers[0].sampler.result(workers[0]) == alone.sampler.result(alone)


FRONT = (0.8, 1.6, 2.4)


def front_objective(space):
    """sensitivity_objective's, measured against the delta of the walk that claimed the trial
    (system attr ``aqsvit:delta``), as the search's objective does for a front."""
    def objective(trial):
        choices = space.suggest(trial)
        err = error(space, choices)
        trial.set_user_attr("drop", err)
        trial.set_user_attr("sensitivity", err)
        delta = trial.storage.get_trial_system_attrs(trial._trial_id).get(DELTA_ATTR, FRONT[-1])
        trial.set_constraint("error", err - delta)
        return -err, space.cost(choices)
    return objective


def measured(trials) -> list:
    """What ``trials`` measured, probes and idle trials aside: (assignment, values), sorted."""
    return sorted((sorted(t.params.items()), t.values) for t in trials
                  if t.params and not t.system_attrs.get(IDLE_ATTR) and not t.system_attrs.get(PROBE_ATTR))


@pytest.mark.parametrize("make", [GreedySampler, lambda s, **kw: BeamSampler(s, width=2, **kw)])
@pytest.mark.parametrize("start", ["precise", "sensitivity"])
def test_one_front_study_walks_each_delta_as_a_search_for_it_alone(make, start):
    space = SearchSpace.from_units(SIZES)
    sampler = make(space, start=start, front=FRONT)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(front_objective(space), n_trials=1000)
    results = sampler.front_results(study)
    assert list(results) == list(FRONT) and sampler.result(study) == results[FRONT[-1]]
    single_trials = 0
    for delta in FRONT:
        alone = make(space, start=start)
        single = optuna.create_study(directions=["maximize", "minimize"], sampler=alone)
        single.optimize(sensitivity_objective(space, limit=delta), n_trials=1000)
        single_trials += sum(not t.system_attrs.get(IDLE_ATTR) for t in single.trials)
        assert results[delta] == alone.result(single), delta  # the same walk, so the same result
        walked = [t for t in study.trials if t.system_attrs.get(DELTA_ATTR) == delta]
        assert measured(walked) == measured(single.trials)  # the same assignments, measured alike
    front_trials = sum(not t.system_attrs.get(IDLE_ATTR) for t in study.trials)
    probes = sum(bool(t.system_attrs.get(PROBE_ATTR)) for t in study.trials)
    assert front_trials == single_trials - (len(FRONT) - 1) * probes  # the probes alone are shared
    keys = [t.system_attrs[KEY_ATTR] for t in study.trials if not t.system_attrs.get(IDLE_ATTR)]
    assert len(keys) == len(set(keys))


def test_an_enqueued_trial_on_a_front_is_claimed_for_the_tightest_open_walk_then_the_loosest():
    space = SearchSpace.from_units(SIZES)
    sampler = GreedySampler(space, start="sensitivity", front=FRONT)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def first_walk_done(study, trial):
        if FRONT[0] in sampler.front_results(study):
            study.stop()
    study.optimize(front_objective(space), n_trials=1000, callbacks=[first_walk_done])
    open_walk = next(d for d in FRONT if d not in sampler.front_results(study))
    assert open_walk == FRONT[1]
    study.enqueue_trial(space.params(unmeasured(space, study)))
    study.optimize(front_objective(space), n_trials=1)
    assert study.trials[-1].system_attrs[DELTA_ATTR] == open_walk
    study.optimize(front_objective(space), n_trials=1000)  # every walk ends
    assert list(sampler.front_results(study)) == list(FRONT)
    study.enqueue_trial(space.params(unmeasured(space, study)))
    study.optimize(front_objective(space), n_trials=1)
    assert study.trials[-1].system_attrs[DELTA_ATTR] == FRONT[-1]


def unmeasured(space, study) -> dict:
    """An assignment no trial of ``study`` holds, so that enqueued it is claimed, not replaced."""
    held = {space.key(space.choices_from_params(t.params)) for t in study.trials if t.params}
    names = [unit.name for unit in space.units]
    return next(choices for combo in itertools.product(space.candidates(), repeat=len(names))
                if space.key(choices := dict(zip(names, combo))) not in held)


@pytest.mark.parametrize("make", [GreedySampler, lambda s, **kw: BeamSampler(s, width=2, **kw)])
def test_workers_a_front_walk_cannot_keep_busy_walk_the_next_delta_and_each_result_stays_its_own(make):
    """Three workers (threads, each with its own sampler, as processes would be) on one front
    study: the walks overlap (the loosest delta's walk starts before the tightest one's ends),
    every delta still ends at a search for it alone's result, and no claim is evaluated twice."""
    import threading
    import time

    space = SearchSpace.from_units(SIZES)
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, study_name="front", directions=["maximize", "minimize"])
    measure = front_objective(space)

    def slow(trial):  # long enough that a walk with one proposal leaves the other workers waiting
        time.sleep(0.02)
        return measure(trial)

    def work(seed):
        study = optuna.load_study(study_name="front", storage=storage,
                                  sampler=make(space, start="sensitivity", front=FRONT, poll_interval=0.01, seed=seed))
        study.optimize(slow, n_trials=1000)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    study = optuna.load_study(study_name="front", storage=storage, sampler=make(space, start="sensitivity", front=FRONT))
    results = study.sampler.front_results(study)
    for delta in FRONT:
        alone = make(space, start="sensitivity")
        single = optuna.create_study(directions=["maximize", "minimize"], sampler=alone)
        single.optimize(sensitivity_objective(space, limit=delta), n_trials=1000)
        assert results[delta] == alone.result(single), delta
    walked = [t for t in study.trials if not t.system_attrs.get(IDLE_ATTR) and not t.system_attrs.get(PROBE_ATTR)]
    tightest = [t for t in walked if t.system_attrs.get(DELTA_ATTR) == FRONT[0]]
    loosest = [t for t in walked if t.system_attrs.get(DELTA_ATTR) == FRONT[-1]]
    assert min(t.datetime_start for t in loosest) < max(t.datetime_complete for t in tightest)
    keys = [t.system_attrs[KEY_ATTR] for t in study.trials if not t.system_attrs.get(IDLE_ATTR)]
    assert len(keys) == len(set(keys))


def test_a_front_study_resumed_with_another_delta_walks_it_alone_and_keeps_its_walks():
    """A delta added on a resume (the user picked 1.6 after seeing the front): the study walks it
    as a search for 1.6 alone would, its probes shared, and not one trial of the other walks changes."""
    space = SearchSpace.from_units(SIZES)
    storage = optuna.storages.InMemoryStorage()

    def study_for(front):
        return optuna.create_study(storage=storage, study_name="front", directions=["maximize", "minimize"],
                                   sampler=GreedySampler(space, start="sensitivity", front=front), load_if_exists=True)

    first = study_for((FRONT[0], FRONT[2]))
    first.optimize(front_objective(space), n_trials=1000)
    before = [(t.number, t.state, t.params, t.system_attrs) for t in first.trials]
    resumed = study_for(FRONT)
    resumed.optimize(front_objective(space), n_trials=1000)
    results = resumed.sampler.front_results(resumed)
    assert list(results) == list(FRONT)
    assert [(t.number, t.state, t.params, t.system_attrs) for t in resumed.trials[:len(before)]] == before
    added = [t for t in resumed.trials[len(before):] if not t.system_attrs.get(IDLE_ATTR)]
    assert added and {t.system_attrs.get(DELTA_ATTR) for t in added} == {FRONT[1]}  # no probe measured again
    alone = GreedySampler(space, start="sensitivity")
    single = optuna.create_study(directions=["maximize", "minimize"], sampler=alone)
    single.optimize(sensitivity_objective(space, limit=FRONT[1]), n_trials=1000)
    assert results[FRONT[1]] == alone.result(single)
    assert measured(added) == measured(single.trials)  # the same walk, measured alike


@pytest.mark.parametrize("deferred", [True, False])
def test_a_ctrl_c_while_an_outcome_is_added_waits_until_its_trial_is_written(deferred, tmp_path):
    """A Ctrl-C that lands inside add_measured (the search's setup records its measurements so,
    outside Optuna's loop) under interrupts_deferred is raised once the trial is written whole;
    without it the trial stays RUNNING, which the deferral exists to prevent."""
    import os
    import signal
    from contextlib import nullcontext

    from aqsvit.search.storages import create_storage
    from aqsvit.search.study import interrupts_deferred

    space = SearchSpace.from_units(SIZES)
    study = optuna.create_study(directions=["maximize", "minimize"], storage=create_storage(f"sqlite:///{tmp_path}/s.db"),
                                sampler=GreedySampler(space, start="one_width"))
    cheapest = space.uniform(space.candidates()[0])
    err = error(space, cheapest)
    measured = optuna.trial.create_trial(
        state=TrialState.COMPLETE, values=[-err, space.cost(cheapest)], params=space.params(cheapest),
        distributions=space.distributions(), constraints={"error": err - LIMIT}, user_attrs={"measured_by": "test"})
    write = study._storage.set_trial_user_attr

    def interrupted_write(*args):  # Ctrl-C arrives while the trial is being written
        os.kill(os.getpid(), signal.SIGINT)
        return write(*args)

    study._storage.set_trial_user_attr = interrupted_write
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred() if deferred else nullcontext():
            study.sampler.add_measured(study, measured)
    (trial,) = study.get_trials()
    if deferred:
        assert trial.state == TrialState.COMPLETE and trial.user_attrs == measured.user_attrs
    else:
        assert trial.state == TrialState.RUNNING
