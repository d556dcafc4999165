"""The one settings schema (aqsvit.settings): defaults written once, checked once, taken by the CLI
and by aqsvit.quantize alike."""
from __future__ import annotations

import dataclasses

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aqsvit.cli import CONF_DIR, check_config
from aqsvit.errors import AqsvitError
from aqsvit.search.pruners import Drift
from aqsvit.search.samplers import Beam, SamplerContext
from aqsvit.settings import EvalSettings, ModelSettings, SearchSettings, Settings, config_defaults


def composed(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_config_yaml_holds_no_default_of_the_schema():
    """conf/config.yaml sets only the study name's interpolation; every other value is the schema's."""
    own = OmegaConf.load(f"{CONF_DIR}/config.yaml")
    assert sorted(k for k in own if k not in ("defaults", "hydra")) == ["search"]
    assert list(own.search) == ["study_name"]


def test_the_default_config_is_the_schema_defaults():
    settings = check_config(composed())
    plain = Settings(model=settings.model, dataset=settings.dataset)
    assert settings.eval == plain.eval and settings.train == plain.train and settings.finetune == plain.finetune
    same = dataclasses.replace(settings.search, study_name="aqsvit", storage_url=plain.search.storage_url,
                               sampler_options={}, pruner_options={})  # the group yamls list every option
    assert same == plain.search and settings.search.pruner_settings == plain.search.pruner_settings
    assert set(OmegaConf.to_container(composed())) == set(config_defaults())


def test_sampler_and_pruner_options_are_built_once_into_their_objects():
    settings = check_config(composed("sampler=beam", "sampler.width=2", "pruner.tau=0.5"))
    assert settings.search.sampler_settings == Beam(width=2)
    assert settings.search.pruner_settings == Drift(tau=0.5)
    assert settings.search.sampler_settings is settings.search.sampler_settings  # no rebuild per access


def test_search_start_has_one_default():
    assert SamplerContext(space=None).start == SearchSettings().start == SearchSettings.start


@pytest.mark.parametrize("make, field", [
    (lambda: SearchSettings(screen=0), "search.screen"),
    (lambda: SearchSettings(sampler="beam", sampler_options={"width": 0}), "sampler.width"),
    (lambda: EvalSettings(cache_gb=-1), "search.cache_gb"),
    (lambda: Settings(worker=1), "worker"),
])
def test_settings_are_checked_when_built(make, field):
    with pytest.raises(AqsvitError, match=f"^{field}: got"):
        make()


def test_quantize_takes_every_search_and_evaluation_setting():
    from aqsvit.api import _settings

    search, evaluation = _settings("Net", "beam", 1.0, "sqlite:///x.db", None, False,
                                   {"cache_gb": 0, "eval_batch": 16, "start": "precise", "sampler_options": {"width": 2}})
    assert evaluation.cache_gb == 0 and evaluation.eval_batch == 16
    assert search.start == "precise" and search.sampler_settings == Beam(width=2) and search.study_name == "Net-beam"
    search, _ = _settings("Net", "greedy", 1.0, "sqlite:///x.db", "s", True, {"screen": 0.5})
    assert not search.staged and search.screen == 1.0  # a callable accuracy: no staged stop, no screen
    with pytest.raises(AqsvitError, match="^cache_gbb: not a setting; allowed: .*cache_gb"):
        _settings("Net", "greedy", 1.0, "sqlite:///x.db", None, False, {"cache_gbb": 0})
    with pytest.raises(AqsvitError, match="^search.cache_gb: got -1"):
        _settings("Net", "greedy", 1.0, "sqlite:///x.db", None, False, {"cache_gb": -1})


def test_model_settings_build_the_spec():
    assert ModelSettings("spikformer_digits", {"depths": 1}).spec().kwargs["depths"] == 1
