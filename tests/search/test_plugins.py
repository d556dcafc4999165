"""Plug points: every registered sampler, pruner, data set and drift definition against its conf
yaml, and a sampler, pruner and data set added from a test module (no edit under aqsvit/)."""
from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aqsvit.cli import CONF_DIR, check_config
from aqsvit.data import DATASETS
from aqsvit.proxy import DEFINITIONS
from aqsvit.search.pruners import PRUNERS
from aqsvit.search.vocabulary import FINGERPRINT_ATTR
from aqsvit.search.samplers import SAMPLERS, SamplerContext
from aqsvit.search.space import SearchSpace

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_CONF = ROOT / "tests" / "plugin_example" / "conf"


def group_yaml(group: str, name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / group / f"{name}.yaml"))


@pytest.mark.parametrize("group,registry", [("sampler", SAMPLERS), ("pruner", PRUNERS)])
def test_each_yaml_holds_exactly_its_registered_options_with_their_defaults(group, registry):
    assert sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml")) == registry.names()
    for name in registry.names():
        options = {k: v for k, v in group_yaml(group, name).items() if k != "name"}
        defaults = {f.name: f.default for f in dataclasses.fields(registry[name])}
        assert group_yaml(group, name)["name"] == name and options == defaults, name


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_registered_sampler_runs_an_optuna_study(name):
    space = SearchSpace.from_units({"a": 10, "b": 20}, ("uniform",), (8, 4))
    sampler = SAMPLERS[name]().build(SamplerContext(space, seed=1))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)

    def objective(trial):
        choices = space.suggest(trial)
        bits = sum(b for _, b in choices.values())
        trial.set_constraint("accuracy", 10.0 - bits)  # feasible from 10 bits up
        return float(bits), float(bits)

    study.optimize(objective, n_trials=6)
    assert any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_every_pruner_and_drift_definition_is_selectable_in_the_config():
    for pruner in PRUNERS.names():
        for definition in DEFINITIONS.names():
            with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
                cfg = compose("config", overrides=[f"pruner={pruner}", f"pruner.definition={definition}"])
            check_config(cfg)


def test_every_dataset_yaml_names_a_registered_builder_and_only_its_arguments():
    for path in sorted((Path(CONF_DIR) / "dataset").glob("*.yaml")):
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        params = inspect.signature(DATASETS[cfg["name"]]).parameters
        assert set(cfg.get("kwargs") or {}) <= set(params), path.name
    assert sorted(p.stem for p in (Path(CONF_DIR) / "dataset").glob("*.yaml")) == DATASETS.names()


def test_an_unknown_option_of_a_registered_plugin_is_one_line(tmp_path):
    from aqsvit.errors import AqsvitError
    from aqsvit.search.samplers import sampler_options

    with pytest.raises(AqsvitError, match=r"^sampler.depth: not an option of sampler 'beam'; allowed: width$"):
        sampler_options("beam", {"depth": 2})


@pytest.mark.slow
def test_cli_searches_with_a_sampler_pruner_and_dataset_from_a_plugin_module(tmp_path):
    db = tmp_path / "s.db"
    args = [sys.executable, "-m", "aqsvit.cli", "search", f"hydra.searchpath=[file://{PLUGIN_CONF}]",
            "plugins=[tests.plugin_example.extra]", "sampler=qmc", "pruner=logit_limit", "pruner.limit=0.2",
            "dataset=noisy_digits", "search.n_trials=5", "train.epochs=5", "progress=false",
            f"storage.url=sqlite:///{db}", f"checkpoint_dir={tmp_path / 'ck'}", f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="spikformer_digits-noisy_digits-qmc", storage=f"sqlite:///{db}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 5
    assert study.user_attrs[FINGERPRINT_ATTR]["sampler"] == "qmc scramble True"
    assert study.user_attrs[FINGERPRINT_ATTR]["pruner"].startswith("logit_limit limit 0.2 ")
    assert {t.user_attrs.get("pruned_by") for t in finished if t.state.name == "PRUNED"} <= {"logit limit",
                                                                                            "staged accuracy"}
    for t in finished:  # the plug-in pruner stopped exactly the candidates over its limit
        if "drift_all" in t.user_attrs:
            assert (t.user_attrs.get("pruned_by") == "logit limit") == (t.user_attrs["drift_all"]["logit"] > 0.2)
    assert json.loads(json.dumps(study.user_attrs["aqsvit:context"]))["dataset"] == "noisy_digits"
    # without the plug-in module its names are refused in one line (exit 2)
    refused = subprocess.run([a for a in args if not a.startswith("plugins=")], cwd=ROOT, capture_output=True,
                             text=True, timeout=600)
    assert refused.returncode == 2 and "sampler.name: got 'qmc'; allowed: beam, greedy, nsga2, random, tpe" \
        in refused.stderr, refused.stderr


def test_the_local_drift_definition_drives_a_search(evaluator, tmp_path):
    """``pruner.definition=local`` (each layer fed the FP model's input) is computed and gated on."""
    from aqsvit.search.run import prepare
    from aqsvit.search.settings import SearchSettings

    search = prepare(evaluator, SearchSettings(pruner_options={"definition": "local", "tau": 0.05}, n_trials=4,
                                               sampler="random", study_name="local",
                                               storage_url=f"sqlite:///{tmp_path}/s.db"), "ref-local")
    search.study.optimize(search.objective, n_trials=4)
    recorded = [t for t in search.study.trials if "drift_all" in t.user_attrs]
    assert recorded and all(t.user_attrs["drift"] == t.user_attrs["drift_all"]["local"] for t in recorded)
    for t in recorded:  # the threshold gate reads the local drift
        if t.user_attrs.get("pruned_by") == "drift":
            assert t.user_attrs["drift"] > 0.05
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.user_attrs["drift"] <= 0.05


@pytest.mark.parametrize("group", ["dataset", "model", "pruner", "sampler", "storage"])
def test_every_conf_yaml_resolves_and_passes_the_config_check(group):
    for path in sorted((Path(CONF_DIR) / group).glob("*.yaml")):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("config", overrides=[f"{group}={path.stem}"])
        check_config(cfg)
        assert OmegaConf.to_container(cfg, resolve=True)[group]


def storage_urls(tmp_path: Path) -> dict[str, str]:
    """A live URL per registered scheme: local files under ``tmp_path``, the servers CI runs."""
    from worker_tools import PG_URL
    return {"sqlite": f"sqlite:///{tmp_path}/s.db", "journal": f"journal:///{tmp_path}/s.log", "postgresql": PG_URL,
            "redis": "redis://127.0.0.1:6379/0"}


def test_every_registered_storage_keeps_a_study_and_each_storage_yaml_names_one(tmp_path):
    from aqsvit.search.storages import STORAGES, create_storage, scheme_of

    urls = storage_urls(tmp_path)
    assert sorted(urls) == STORAGES.names()
    for scheme, url in urls.items():
        name = f"contract-{scheme}-{tmp_path.name}"
        study = optuna.create_study(study_name=name, storage=create_storage(url), directions=["maximize"])
        study.optimize(lambda t: t.suggest_int("x", 0, 3), n_trials=2)
        again = optuna.load_study(study_name=name, storage=create_storage(url))
        assert [t.params for t in again.trials] == [t.params for t in study.trials] and len(again.trials) == 2
        optuna.delete_study(study_name=name, storage=create_storage(url))
    for path in sorted((Path(CONF_DIR) / "storage").glob("*.yaml")):
        assert scheme_of(OmegaConf.load(path).url) in STORAGES, path.name


def test_a_storage_registered_from_outside_is_selectable_by_its_scheme():
    # in a fresh process: the registry is process-wide and the contract test above counts its entries
    code = """
from optuna.storages import InMemoryStorage
from aqsvit.errors import AqsvitError
from aqsvit.search.storages import create_storage, register_storage
try:
    create_storage("memory://x")
except AqsvitError as exc:
    print(exc)
register_storage("memory", example="memory://NAME")(lambda url, options: InMemoryStorage())
print(type(create_storage("memory://x", workers=4)).__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith("storage.url: got 'memory://x'; allowed: journal:///FILE, postgresql://USER@HOST:PORT/DB, redis://HOST:PORT/DB, sqlite:///FILE")
    assert out[1] == "InMemoryStorage"
