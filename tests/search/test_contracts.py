"""Declared contracts: registries refuse what does not fit at registration or build (one line naming
the plug-in), and the objective asks a plain Optuna pruner (MedianPruner) through its own ``prune``."""
from __future__ import annotations

from dataclasses import dataclass

import optuna
import pytest

from aqsvit.errors import AqsvitError
from aqsvit.registry import Registry
from aqsvit.search import StepPruner
from aqsvit.search.pruners import PRUNERS, make_pruner
from aqsvit.search.samplers import SAMPLERS, SamplerContext, make_sampler
from aqsvit.search.space import SearchSpace


@pytest.fixture
def scratch(monkeypatch):
    """The sampler and pruner registries as they are, restored after the test."""
    for registry in (SAMPLERS, PRUNERS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))
        monkeypatch.setattr(registry, "_meta", dict(registry._meta))


def test_a_sampler_or_pruner_plugin_must_be_a_settings_dataclass_with_build(scratch):
    class NotADataclass:
        def build(self, ctx):
            return optuna.samplers.RandomSampler()

    with pytest.raises(AqsvitError, match=r"^sampler.name: plug-in 'odd' \(.*NotADataclass\) is not a settings "
                                          r"dataclass with a build\(ctx\) method$"):
        SAMPLERS.register("odd")(NotADataclass)

    @dataclass
    class NoBuild:
        width: int = 1

    with pytest.raises(AqsvitError, match=r"^pruner.name: plug-in 'odd' .* is not a settings dataclass"):
        PRUNERS.register("odd")(NoBuild)
    with pytest.raises(AqsvitError, match=r"^tool.name: plug-in 'x' \(builtins.int\) is not a callable$"):
        Registry("tool.name").register("x")(3)


def test_what_a_plugin_builds_is_checked_with_one_line_naming_it(scratch):
    @SAMPLERS.register("wrong")
    @dataclass
    class Wrong:
        def build(self, ctx):
            return "tpe"

    with pytest.raises(AqsvitError, match=r"^sampler.name: plug-in 'wrong' \(.*Wrong\) built str, not an "
                                          r"optuna.samplers.BaseSampler$"):
        make_sampler("wrong", Wrong(), SamplerContext(SearchSpace.from_units({"a": 1})))

    class OldContract(optuna.pruners.BasePruner):  # should_prune_step without the StepPruner base
        def should_prune_step(self, study, step, last, choices=None):
            return None

        def prune(self, study, trial):
            return False

    @PRUNERS.register("old")
    @dataclass
    class Old:
        def build(self, delta):
            return OldContract()

    with pytest.raises(AqsvitError, match=r"^pruner.name: plug-in 'old' .* built OldContract, not .*StepPruner\)$"):
        make_pruner("old", Old(), 1.0)

    class Fine(StepPruner):
        def should_prune_step(self, study, step, last, choices=None):
            return None

        def prune(self, study, trial):
            return False

    assert isinstance(make_pruner("old", type("S", (), {"build": lambda self, d: Fine()})(), 1.0), Fine)
    assert make_pruner("none", PRUNERS["none"](), 1.0) is None
    assert isinstance(make_pruner("x", type("M", (), {"build": lambda self, d: optuna.pruners.MedianPruner()})(), 1.0),
                      optuna.pruners.MedianPruner)


def test_a_model_builder_must_build_a_module(monkeypatch):
    from aqsvit.models import registry

    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    monkeypatch.setattr(registry, "_INFO", dict(registry._INFO))
    with pytest.raises(AqsvitError, match="is not a builder function"):
        registry.register_model(3)

    @registry.register_model
    def not_a_module(num_classes: int = 2):
        return [num_classes]

    with pytest.raises(AqsvitError, match=r"^model.name: plug-in 'not_a_module' \(.*not_a_module\) built list, "
                                          r"not a torch.nn.Module$"):
        registry.create_model("not_a_module")


def test_a_plugin_pruner_returning_optunas_median_pruner_runs_a_search(evaluator, tmp_path, scratch):
    """MedianPruner cannot be asked through trial.should_prune in a two-objective study: the objective
    records each calibration step's drift as the intermediate value and asks its ``prune``
    (unstaged, so trials complete and the pruner has a median to compare with)."""
    from aqsvit.search.run import prepare, run
    from aqsvit.search.settings import SearchSettings

    @PRUNERS.register("median")
    @dataclass
    class Median:
        definition: str = "logit"

        def build(self, delta: float) -> optuna.pruners.BasePruner:
            return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)

    search = prepare(evaluator, SearchSettings(pruner="median", sampler="random", n_trials=8, study_name="median",
                                               calib_images=64, calib_batch=32, screen=1.0, staged=False,
                                               storage_url=f"sqlite:///{tmp_path}/s.db"), "ref-median")
    run(search, progress=False)
    trials = search.study.trials
    assert len(trials) == 8 and all(t.state.is_finished() and t.state.name != "FAIL" for t in trials)
    for t in trials:
        steps = t.user_attrs.get("drift_steps", [])
        assert steps and t.intermediate_values == {s["step"]: s["values"]["logit"] for s in steps}
    stopped = [t for t in trials if t.user_attrs.get("pruned_by") == "MedianPruner"]
    assert stopped, "the median pruner never stopped a candidate: the case tests nothing"
    for t in stopped:  # worse (more drift) than the median of the completed trials at that step
        step = max(t.intermediate_values)
        earlier = sorted(c.intermediate_values[step] for c in trials
                         if c.state.name == "COMPLETE" and c.number < t.number and step in c.intermediate_values)
        assert len(earlier) >= 2 and t.intermediate_values[step] > earlier[(len(earlier) - 1) // 2]
