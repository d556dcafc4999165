"""The stepwise machinery's pure parts, without a study: the walk's outcome logic, the integer
program, the starts as strategy objects, and the fingerprint a start records (unchanged, so studies
recorded before the starts became objects still resume)."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from aqsvit.errors import AqsvitError
from aqsvit.search import GreedySampler, StepwiseSampler
from aqsvit.search.fingerprint import check_fingerprint, fingerprint
from aqsvit.search.settings import SearchSettings
from aqsvit.search.space import SearchSpace
from aqsvit.search.stepwise import STARTS, AutoStart, OneWidthStart, PreciseStart, SensitivityStart, walk_start
from aqsvit.search.stepwise.outcome import (Outcome, Plan, Readings, at_key, first_feasible, judge, read_trials,
                                           walk_key)
from aqsvit.search.stepwise.sensitivity import SensitivityProgram, probes
from aqsvit.search.vocabulary import FINGERPRINT_ATTR, IDLE_ATTR, KEY_ATTR, OUTRANKED, PROBE_PREFIX, VERIFY_PREFIX

SPACE = SearchSpace.from_units({"a": 100, "b": 10, "c": 40}, ("uniform", "pot"), (8, 4, 2))


# --- outcome logic ---------------------------------------------------------------------------------
def test_judge_accepts_screens_within_the_reserve_and_leaves_the_rest_undecided():
    readings = Readings(decided={"plain": Outcome(False, 0.3)},
                        screened={"ok": (2, 5, 0.1), "tight": (5, 5, 0.2), "checked": (1, 5, 0.4)},
                        verified={"checked": (True, 3)})  # the verification saw 2 errors beyond its screen
    outcomes, undecided = judge(readings)
    assert outcomes["plain"] == Outcome(False, 0.3)
    assert outcomes["checked"] == Outcome(True, 0.4)  # verified: exact
    assert outcomes["ok"] == Outcome(True, 0.1, exact=False)  # 2 <= 5 - 2
    assert undecided == {"tight"}  # 5 > 5 - 2: to verify


def test_judge_counts_outranked_children_infeasible_until_a_verification_fails():
    outcomes, undecided = judge(Readings(outranked={"child": 0.5}))
    assert outcomes["child"] == Outcome(False, 0.5) and not undecided
    failed = Readings(screened={"parent": (1, 4, 0.1)}, verified={"parent": (False, 6)}, outranked={"child": 0.5})
    outcomes, undecided = judge(failed)
    assert outcomes["parent"] == Outcome(False, 0.1) and undecided == {"child"}
    failed.verified["child"] = (True, 2)
    assert judge(failed)[0]["child"] == Outcome(True, 0.5)


def test_a_fronts_walk_reads_its_own_claims_and_every_probe():
    # each delta's walk claims "at <delta>:<key>"; a probe, measured alike for every delta, is claimed once
    trials = [_trial(at_key(0.5, "a"), constraint=0.3, drift=0.1),
              _trial(at_key(1.0, "a"), constraint=-0.2, drift=0.1),
              _trial(at_key(1.0, VERIFY_PREFIX + "b"), errors=2),
              _trial(at_key(1.0, PROBE_PREFIX + "p"), state=TrialState.PRUNED, sensitivity=0.3),
              _trial("plain")]
    assert at_key(1.0, PROBE_PREFIX + "p") == PROBE_PREFIX + "p"
    at = {d: read_trials(trials, lambda t, d=d: walk_key(d, t.system_attrs[KEY_ATTR])) for d in (0.5, 1.0, 2.0)}
    probe = Outcome(False, 0.0, sensitivity=0.3)
    assert at[0.5].decided == {"a": Outcome(False, 0.1), PROBE_PREFIX + "p": probe} and not at[0.5].verified
    assert at[1.0].decided == {"a": Outcome(True, 0.1), PROBE_PREFIX + "p": probe} and at[1.0].verified == {"b": (True, 2)}
    assert at[2.0].decided == {PROBE_PREFIX + "p": probe}  # nothing of the other walks, nor a plain claim
    assert all("plain" not in readings.claims for readings in at.values())


def _trial(key, state=TrialState.COMPLETE, constraint=-1.0, **user_attrs):
    return create_trial(state=state, values=[1.0, 1.0] if state == TrialState.COMPLETE else None,
                        system_attrs={KEY_ATTR: key}, user_attrs=user_attrs,
                        constraints={"accuracy": constraint} if state == TrialState.COMPLETE else None)


def test_read_trials_sorts_trials_by_what_the_walk_reads():
    trials = [_trial("plain", constraint=0.5, drift=0.2),
              _trial("screen", screened=True, errors=1, budget=3, drift=0.1),
              _trial(VERIFY_PREFIX + "screen", errors=2),
              _trial(PROBE_PREFIX + "p", state=TrialState.PRUNED, sensitivity=0.7),
              _trial("beaten", state=TrialState.PRUNED, pruned_by=OUTRANKED, drift=0.9),
              _trial("idle", state=TrialState.PRUNED)]
    trials[-1].system_attrs[IDLE_ATTR] = True
    readings = read_trials(trials, lambda t: t.system_attrs.get(KEY_ATTR))
    assert readings.decided == {"plain": Outcome(False, 0.2), PROBE_PREFIX + "p": Outcome(False, 0.0, sensitivity=0.7)}
    assert readings.screened == {"screen": (1, 3, 0.1)} and readings.verified == {"screen": (True, 2)}
    assert readings.outranked == {"beaten": 0.9}
    assert set(readings.claims) == {"plain", "screen", VERIFY_PREFIX + "screen", PROBE_PREFIX + "p", "beaten"}


def test_first_feasible_waits_for_every_dearer_option_before_the_first_feasible_one():
    options = [{"u": c} for c in ("x", "y", "z")]
    key = lambda o: o["u"]  # noqa: E731
    assert first_feasible(options, {"y": Outcome(True, 0)}, key) == (None, [{"u": "x"}])
    assert first_feasible(options, {"x": Outcome(False, 0), "y": Outcome(True, 0)}, key) == ({"u": "y"}, [])
    assert first_feasible(options, {k: Outcome(False, 0) for k in "xyz"}, key) == (None, [])


# --- the integer program ---------------------------------------------------------------------------
def test_the_program_picks_the_least_memory_assignment_within_each_budget():
    choices = [SPACE.start, *SPACE.candidates()]
    sens = {u.name: {c: (0.0 if c == SPACE.start else (i + 1) * 0.1 * (9 - SPACE.choice_bits(c)) / (2 if c[0] == "uniform" else 1))
                     for c in choices} for i, u in enumerate(SPACE.units)}
    program = SensitivityProgram(SPACE, sens)
    names = [u.name for u in SPACE.units]
    for budget in (0.0, 0.3, 0.7, 1.5, program.largest_budget):
        feasible = [dict(zip(names, combo)) for combo in itertools.product(choices, repeat=len(names))
                    if sum(sens[n][c] for n, c in zip(names, combo)) <= budget + 1e-9]
        best = min(feasible, key=lambda a: (SPACE.cost(a), sum(sens[n][a[n]] for n in names)))
        assert SPACE.cost(program.pick(budget)) == SPACE.cost(best)
        assert sum(sens[n][program.pick(budget)[n]] for n in names) <= budget + 1e-9


# --- starts as strategy objects --------------------------------------------------------------------
def test_config_names_map_to_start_objects_in_one_table():
    assert list(STARTS) == ["auto", "precise", "one_width", "sensitivity"]
    assert [type(walk_start(name)) for name in STARTS] == [AutoStart, PreciseStart, OneWidthStart, SensitivityStart]
    start = SensitivityStart()
    assert walk_start(start) is start
    with pytest.raises(AqsvitError, match=r"^search.start: got 'middle'; allowed: auto, precise, one_width, sensitivity$"):
        walk_start("middle")
    assert type(AutoStart().resolve(SPACE)) is SensitivityStart
    assert type(AutoStart(max_probes=len(probes(SPACE)) - 1).resolve(SPACE)) is OneWidthStart


def test_the_one_width_start_walks_the_widths_cheapest_first_without_a_study():
    widths = [SPACE.uniform(c) for c in SPACE.candidates()]
    plan = OneWidthStart().assignment(SPACE, {})
    assert isinstance(plan, Plan) and plan.proposals == widths
    outcomes = {SPACE.key(w): Outcome(i >= 2, 0.0) for i, w in enumerate(widths)}
    assert OneWidthStart().assignment(SPACE, outcomes) == widths[2]
    assert PreciseStart().assignment(SPACE, outcomes) == SPACE.uniform(SPACE.start)


def test_a_sampler_takes_a_start_object_and_walks_as_with_its_name():
    def objective(trial):
        choices = SPACE.suggest(trial)
        err = sum(3 / SPACE.choice_bits(c) for c in choices.values())
        trial.set_user_attr("sensitivity", err)
        trial.set_constraint("error", err - 2.0)
        return -err, SPACE.cost(choices)

    walks = []
    for start in ("sensitivity", SensitivityStart()):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=GreedySampler(SPACE, start=start))
        study.optimize(objective, n_trials=300)
        walks.append([t.params for t in study.trials])
    assert walks[0] == walks[1]


def test_stepwise_sampler_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        StepwiseSampler(SPACE)


# --- the fingerprint a start records -------------------------------------------------------------
RECORDED = {  # what studies recorded before starts became objects (resolve_start and string tests)
    ("greedy", "precise"): "greedy",
    ("greedy", "one_width"): "greedy from one_width",
    ("greedy", "sensitivity"): "greedy from sensitivity (probes: KL from the precise outputs, scaled by weight noise)",
    ("greedy", "auto"): "greedy from sensitivity (probes: KL from the precise outputs, scaled by weight noise)",
    ("beam", "one_width"): "beam width 3 from one_width",
    ("tpe", "sensitivity"): "tpe",
}


@pytest.mark.parametrize("sampler,start", list(RECORDED))
def test_the_fingerprint_records_the_resolved_start_as_before(sampler, start):
    evaluator = SimpleNamespace(model=SimpleNamespace(spec=SimpleNamespace(describe=lambda: "model")))
    settings = SearchSettings(sampler=sampler, start=start)
    assert fingerprint(evaluator, settings, SPACE, "ref")["sampler"] == RECORDED[sampler, start]


def test_a_front_study_resumed_with_more_deltas_records_them_and_refuses_any_other_change():
    evaluator = SimpleNamespace(model=SimpleNamespace(spec=SimpleNamespace(describe=lambda: "model")))

    def recorded_by(**settings) -> dict:
        return fingerprint(evaluator, SearchSettings(**settings), SPACE, "ref")

    study = optuna.create_study(directions=["maximize", "minimize"])
    check_fingerprint(study, recorded_by(front=(0.5, 2)))
    check_fingerprint(study, recorded_by(front=(0.5, 0.7, 2, 3)))  # two more walks in the same study
    after = study.user_attrs[FINGERPRINT_ATTR]
    assert after["front"] == [0.5, 0.7, 2, 3] and after["delta"] == 3
    check_fingerprint(study, recorded_by(front=(2,)))  # a resume with fewer deltas walks those and forgets none
    assert study.user_attrs[FINGERPRINT_ATTR] == after
    for other in ({"front": (0.5, 2), "screen": 0.5}, {"front": (0.5, 2), "start": "one_width"}, {"delta": 3}):
        with pytest.raises(AqsvitError, match="was created with"):  # any other setting, or one delta alone
            check_fingerprint(study, recorded_by(**other))
    assert study.user_attrs[FINGERPRINT_ATTR] == after
    plain = optuna.create_study(directions=["maximize", "minimize"])
    check_fingerprint(plain, recorded_by(delta=1))
    with pytest.raises(AqsvitError, match="was created with front = None, now"):  # a one-delta study stays one
        check_fingerprint(plain, recorded_by(front=(1, 2)))
