"""Safe resume: a study remembers what makes its trials comparable."""
from __future__ import annotations

import optuna
import pytest

from aqsvit.errors import AqsvitError
from aqsvit.search.run import prepare
from aqsvit.search.settings import SearchSettings


def settings(tmp_path, **kw) -> SearchSettings:
    return SearchSettings(storage_url=f"sqlite:///{tmp_path}/s.db", study_name="resume", **kw)


@pytest.mark.parametrize("change,field", [
    ({"delta": 0.5}, "delta"),
    ({"bits": (8, 4, 2)}, "search space"),
    ({"granularity": "block"}, "search space"),
    ({"sampler": "beam"}, "sampler"),
])
def test_resuming_with_other_settings_is_refused_and_force_starts_over(evaluator, tmp_path, change, field):
    first = prepare(evaluator, settings(tmp_path), "ref-a")
    first.study.enqueue_trial({})  # a row that must survive the refused resume
    rows = len(first.study.trials)
    with pytest.raises(AqsvitError, match=rf"study 'resume' was created with {field} = .*, now .*--force-new-study"):
        prepare(evaluator, settings(tmp_path, **change), "ref-a")
    same = optuna.load_study(study_name="resume", storage=f"sqlite:///{tmp_path}/s.db")
    assert len(same.trials) == rows
    fresh = prepare(evaluator, settings(tmp_path, force_new_study=True, **change), "ref-a")
    # nothing of the old study: only what the new one's setup measured (the one-width probes
    # ordering the screen, recorded as trials for the stepwise samplers)
    assert all(t.user_attrs["measured_by"] == "screen order" for t in fresh.study.trials)


def test_other_reference_weights_or_data_are_refused(evaluator, tmp_path):
    prepare(evaluator, settings(tmp_path), "ckpt-a-data-1")
    with pytest.raises(AqsvitError, match=r"reference \(checkpoint, data\) = 'ckpt-a-data-1', now 'ckpt-b-data-1'"):
        prepare(evaluator, settings(tmp_path), "ckpt-b-data-1")
    assert prepare(evaluator, settings(tmp_path), "ckpt-a-data-1").study.study_name == "resume"
