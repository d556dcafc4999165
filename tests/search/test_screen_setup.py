"""The screen's setup measures one-width assignments exactly; the search records them as trials,
so the stepwise samplers' one-width step reads them instead of measuring them again."""
from __future__ import annotations

from optuna.trial import TrialState

from aqsvit.search.run import prepare, run, summarize
from aqsvit.search.settings import SearchSettings
from aqsvit.search.trials import is_feasible
from aqsvit.search.vocabulary import IDLE_ATTR, KEY_ATTR


def test_the_setups_one_width_measurements_are_trials_the_walk_reads_and_a_resume_adds_none(evaluator, tmp_path):
    settings = SearchSettings(start="one_width", storage_url=f"sqlite:///{tmp_path}/s.db", study_name="setup")
    search = prepare(evaluator, settings, "digits")
    space = search.space
    recorded = search.study.get_trials(deepcopy=False)
    widths = [space.uniform(c) for c in space.candidates()]
    # cheapest first, up to the first one within delta, which ordered the screen
    assert [space.choices_from_params(t.params) for t in recorded] == widths[:len(recorded)]
    assert all(t.user_attrs["measured_by"] == "screen order" for t in recorded)
    *rejected, chosen = recorded
    assert not any(is_feasible(t) for t in rejected) and is_feasible(chosen)
    assert chosen.state == TrialState.COMPLETE and "screened" not in chosen.user_attrs  # the whole split
    exact = evaluator.measure(space.assignment(widths[len(recorded) - 1]))
    assert chosen.values == [exact.accuracy, exact.memory_bytes]
    assert chosen.constraints["accuracy"] == exact.drop - settings.delta
    for t in rejected:  # stopped on a first batch, or measured on the whole split, never within delta
        assert t.state == TrialState.PRUNED or t.values[0] < evaluator.fp_accuracy - settings.delta

    run(search, progress=False)
    trials = [t for t in search.study.get_trials(deepcopy=False) if not t.system_attrs.get(IDLE_ATTR)]
    keys = [t.system_attrs[KEY_ATTR].removeprefix("verify:") for t in trials]
    for t in recorded:  # not again, not even verified
        assert keys.count(t.system_attrs[KEY_ATTR]) == 1
    summary = summarize(search)
    assert space.cost(summary.choices) <= space.cost(widths[len(recorded) - 1])
    assert summary.measurement.drop <= settings.delta

    again = prepare(evaluator, settings, "digits")
    assert len(again.study.trials) == len(search.study.trials)
    assert again.setup_images > 0  # measured again, recorded by nobody: the setup's own cost
