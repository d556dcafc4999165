"""The one settings schema: every setting of aqsvit, its default and its check, in one place.

Each config group of ``conf/config.yaml`` is a frozen dataclass here, checked once when it is built
(``__post_init__``: a bad value is one line naming the field and what is allowed). The defaults
are written here only; :func:`register_configs` stores them as Hydra's structured config
``aqsvit_schema``, which ``conf/config.yaml`` lists first in its defaults, so the YAML holds only
what differs (the groups chosen, Hydra's settings, the study name's interpolation).

* :class:`SearchSettings`: what defines a search (the resume fingerprint records it), taken from
  ``search.*``, ``quant.schemes``/``quant.bits``, ``delta``, ``seed``, ``sampler``, ``pruner``,
  ``storage.url``, ``workers`` and ``grace_period``; what :func:`aqsvit.quantize` takes too.
* :class:`EvalSettings`: how a worker evaluates (``search.eval_batch``, ``eval_memory_gb``,
  ``cache_gb``, ``loader_workers``).
* :class:`Settings`: the whole run (the CLI's config), built once by :meth:`Settings.from_config`.

At the Hydra level every value is typed ``Any``: OmegaConf's own coercion would accept
``progress=yes`` or ``quant.split_qkv=3`` and turn ``delta=1000`` into ``1000.0``, while the checks
here name the field and what is allowed. Plug-in groups (``model.kwargs``, ``dataset.kwargs``,
``sampler``, ``pruner``) are free dicts there and become typed objects here, once.

This module imports no torch and no Optuna at import time (the CLI's start-up stays light); the
registries a check needs (samplers, pruners, storages) are imported when a setting is built.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aqsvit.errors import AqsvitError, check_choice, check_flag, check_int, check_number, check_text, invalid

SEED_MAX = 2**32 - 1  # NumPy seeds (Optuna's samplers, the data split) stop there
STUDY_NAME_BYTES = 200  # a study name is a folder name of the report and fine-tune outputs (255 bytes at most)
STUDY_NAME_RULE = (f"1..{STUDY_NAME_BYTES} bytes of text without / or \\ or control characters, not . or .., "
                   "not starting with a space")
DEFAULT_URL = "sqlite:///studies/aqsvit.db"
SCHEMA_NAME = "aqsvit_schema"  # the structured config conf/config.yaml lists first


def check_study_name(name: object) -> str:
    """A study name that is safe as one folder name wherever it becomes a path, and fits every
    storage (Optuna's studies table holds 512 characters)."""
    check_text("search.study_name", name, r"(?!\.\.?\Z)[^\s/\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*", STUDY_NAME_RULE)
    if len(name.encode()) > STUDY_NAME_BYTES:
        raise invalid("search.study_name", name, STUDY_NAME_RULE)
    return name


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # a frozen dataclass normalizing its own field in __post_init__


def _known(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` of ``cls``'s fields (a key added with Hydra's ``+`` is ignored, as it always was)."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return {k: v for k, v in values.items() if k in names}


def _list(field_name: str, value: Any, example: str) -> tuple:
    """A list setting as a tuple, or one line: ``quant.bits=4`` is not a list."""
    if not isinstance(value, (list, tuple)):
        raise invalid(field_name, value, f"a list, e.g. {field_name}={example}")
    return tuple(value)


@dataclass(frozen=True)
class SearchSettings:
    """Everything that defines a search, checked when built. ``sampler_options`` and
    ``pruner_options`` (a plug-in group's keys besides ``name``) are built once into the registered
    settings objects :attr:`sampler_settings` and :attr:`pruner_settings`."""

    sampler: str = "greedy"                    # a name in aqsvit.search.samplers.SAMPLERS
    sampler_options: Mapping[str, Any] = field(default_factory=dict)  # its options (beam: width)
    granularity: str = "layer"                 # network (one choice), block (stem, blocks, head) or layer
    order: str = "network"                     # network, size (largest first), sensitivity (least first)
    # search.start: where greedy/beam walk from: precise (every layer at its widest choice), one_width (the
    # cheapest one width for all within delta; then only lower), sensitivity (probe each layer alone at each
    # choice, then an integer program), or auto: sensitivity up to 2000 probes (1 + layers x choices), one_width
    # above. The one default of search.start (SamplerContext takes it from here).
    start: str = "auto"
    schemes: tuple[str, ...] = ("uniform", "pot")  # quant.schemes; allowed: uniform, pot, fp32
    bits: tuple[int, ...] = (8, 6, 5, 4, 3, 2)  # quant.bits; integers 2..8
    delta: float = 1.0                         # acc(q) >= acc(fp) - delta (points)
    # search.front: the deltas one study answers (greedy/beam), e.g. [0.5, 1, 2, 3], each walked as a search for it
    # alone walks (the probes shared; many workers walk several at once); delta then only chooses which one a command
    # reports (any delta: the smallest measured point within it), and aqsvit pick delta=X reads any of them back
    # without evaluating; resumed with more deltas, the study walks only the new ones. [] = delta alone
    front: tuple[float, ...] = ()
    pruner: str = "drift"                      # a name in aqsvit.search.pruners.PRUNERS
    pruner_options: Mapping[str, Any] = field(default_factory=dict)  # its options (drift: definition, tau, calibrate)
    staged: bool = True                        # stop the accuracy evaluation once the constraint is out of reach
    screen: float = 0.3                        # greedy/beam: decide candidates on this fraction of the evaluation
    # split (hardest images first), then verify the result on all of it; 1 = off
    calib_images: int = 64                     # calibration images for drift (never test images)
    calib_batch: int = 32                      # images per drift step; the pruner may stop after any step
    n_trials: int | None = None                # null: greedy/beam run to the end; Optuna's samplers 200
    seed: int = 0                              # seeds data split, training, samplers
    study_name: str = "aqsvit"                 # the CLI's: <model>-<dataset>-<sampler> (conf/config.yaml)
    storage_url: str = DEFAULT_URL
    workers: int = 1                           # processes sharing the study (SQLite allows 1): `-m workers=4`
    grace_period: float = 20                  # seconds without heartbeat before a worker's trial is failed
    force_new_study: bool = False              # delete the named study first (or: aqsvit search --force-new-study)
    target: str = "any"                        # target=<name>: the hardware target (aqsvit.hardware.TARGETS)
    sampler_settings: Any = field(init=False, repr=False, compare=False)  # built from sampler_options, once
    pruner_settings: Any = field(init=False, repr=False, compare=False)   # built from pruner_options, once

    def __post_init__(self) -> None:
        from aqsvit.search.stepwise import STARTS, check_front
        from aqsvit.search.pruners import pruner_options
        from aqsvit.search.samplers import sampler_options
        from aqsvit.search.space import GRANULARITIES, ORDERS, SearchSpace
        from aqsvit.search.storages import scheme_of

        from aqsvit.hardware import TARGETS

        _set(self, "schemes", tuple(self.schemes))
        _set(self, "bits", tuple(self.bits))
        SearchSpace.from_units({"check": 1}, self.schemes, self.bits, TARGETS[self.target])
        _set(self, "sampler_options", dict(self.sampler_options))
        _set(self, "pruner_options", dict(self.pruner_options))
        _set(self, "sampler_settings", sampler_options(self.sampler, self.sampler_options))  # validated
        _set(self, "pruner_settings", pruner_options(self.pruner, self.pruner_options))
        for name, value, choices in (
                ("search.granularity", self.granularity, GRANULARITIES),
                ("search.order", self.order, ORDERS), ("search.start", self.start, STARTS)):
            check_choice(name, value, choices)
        check_number("delta", self.delta, 0, 100, allowed="numbers 0..100 (accuracy points)")
        _set(self, "front", check_front(self.front))
        if self.front and not self.stepwise:
            raise invalid("search.front", list(self.front), "[] with sampler " + repr(self.sampler) +
                          " (a front is walked by a stepwise sampler: greedy, beam)")
        check_number("search.screen", self.screen, 0, 1, lo_open=True)
        for name, value in (("search.staged", self.staged), ("search.force_new_study", self.force_new_study)):
            check_flag(name, value)
        check_int("search.calib_images", self.calib_images, 1)
        check_int("search.calib_batch", self.calib_batch, 1)
        if self.n_trials is not None:
            check_int("search.n_trials", self.n_trials, 1)
        check_int("seed", self.seed, 0, SEED_MAX)
        check_study_name(self.study_name)
        check_text("storage.url", self.storage_url)
        scheme_of(self.storage_url)
        check_int("workers", self.workers, 1)
        check_number("grace_period", self.grace_period, 0, lo_open=True)

    @property
    def deltas(self) -> tuple[float, ...]:
        """The deltas the search answers, ascending: ``search.front``, or ``delta`` alone."""
        return self.front or (self.delta,)

    @property
    def loosest_delta(self) -> float:
        """The delta every trial is measured against (a front's largest: the others are judged from it)."""
        return self.deltas[-1]

    @property
    def stepwise(self) -> bool:
        """Greedy and beam: they verify what they keep and re-propose failed candidates."""
        from aqsvit.search.samplers import is_stepwise
        return is_stepwise(self.sampler)


@dataclass(frozen=True)
class EvalSettings:
    """How evaluation runs on a worker (``search.eval_batch``, ``search.eval_memory_gb``,
    ``search.cache_gb``, ``search.loader_workers``).

    ``eval_batch``: images per evaluation forward; ``"auto"`` keeps 64 (staged) / 256 (whole split)
    on the CPU and on a GPU takes the largest power of two up to 1024 whose forward fits in half the
    free GPU memory (measured on one batch). ``eval_memory_gb``: the evaluation split stays on the
    GPU when it fits in this many GiB. ``cache_gb``: GiB for the stored stage inputs that let a
    candidate run from the first stage it changes (:mod:`aqsvit.search.stage_cache`; 0: every
    candidate runs the whole forward). ``loader_workers``: processes decoding folder images once
    (``"auto"``: cores / workers, at most 8)."""

    eval_batch: int | str = "auto"             # images per evaluation forward (auto: see above)
    eval_memory_gb: float = 8
    cache_gb: float = 2
    loader_workers: int | str = "auto"         # processes decoding folder images, once per worker
    workers: int = 1                           # the root's ``workers`` (auto loader_workers share the cores)

    def __post_init__(self) -> None:
        if self.eval_batch != "auto":
            check_int("search.eval_batch", self.eval_batch, 1, allowed="auto, or integers >= 1")
        check_number("search.eval_memory_gb", self.eval_memory_gb, 0, allowed="numbers >= 0 (GiB)")
        check_number("search.cache_gb", self.cache_gb, 0, allowed="numbers >= 0 (GiB)")
        if self.loader_workers != "auto":
            check_int("search.loader_workers", self.loader_workers, 0, allowed="auto, or integers >= 0")

    def processes(self) -> int:
        """Decoding processes; none inside a daemonic process (which may not start children)."""
        if multiprocessing.current_process().daemon:
            return 0
        if self.loader_workers != "auto":
            return int(self.loader_workers)
        return min(8, (os.cpu_count() or 1) // max(1, self.workers))


@dataclass(frozen=True)
class TrainSettings:
    """``train.*``: the FP reference's training (a cached checkpoint is keyed by them)."""

    epochs: int = 30                           # reference training epochs (tiny default: ~50 s on 2 cores)
    lr: float = 0.005                          # AdamW peak learning rate (one-cycle schedule)
    batch_size: int = 64

    def __post_init__(self) -> None:
        check_int("train.epochs", self.epochs, 1)
        check_number("train.lr", self.lr, 0, lo_open=True)
        check_int("train.batch_size", self.batch_size, 1)


@dataclass(frozen=True)
class QuantSettings:
    """``quant.split_qkv`` (``quant.schemes`` and ``quant.bits`` define the search: :class:`SearchSettings`)."""

    split_qkv: bool = True                     # Q, K, V of the fused qkv conv as three layers

    def __post_init__(self) -> None:
        check_flag("quant.split_qkv", self.split_qkv)


@dataclass(frozen=True)
class ReportSettings:
    """``report.*``: aqsvit report."""

    dir: str = "studies/reports"               # aqsvit report writes <dir>/<study_name>/
    compare: tuple[str, ...] = ()              # other study names (same storage) drawn in the progress figure

    def __post_init__(self) -> None:
        check_text("report.dir", self.dir)
        _set(self, "compare", _list("report.compare", self.compare, "[name-of-another-study]"))
        for name in self.compare:
            check_text("report.compare", name)


@dataclass(frozen=True)
class ExportSettings:
    """``export.*``: aqsvit export."""

    dir: str = "studies/exports"               # writes <dir>/<study_name>/: assignment.json, the model as the target takes it
    delta: float | None = None                 # null: the search's result; else the smallest measured trial within this delta
    nir: bool = False                          # also model.nir (a chain NIR expresses: a spiking CNN, not attention)

    def __post_init__(self) -> None:
        check_text("export.dir", self.dir)
        if self.delta is not None:
            check_number("export.delta", self.delta, 0, 100, allowed="numbers 0..100 (accuracy points)")
        check_flag("export.nir", self.nir)


@dataclass(frozen=True)
class FinetuneOptions:
    """``finetune.*``: aqsvit finetune (and, with ``delta`` set, after aqsvit search: aim lower)."""

    assignment: str | None = None              # an exported assignment.json; null = the study's smallest feasible ones
    candidates: int = 3                        # how many of the study's smallest feasible assignments to try
    delta: float | None = None                 # final delta after fine-tuning; null = the search's delta
    epochs: int = 5                            # fine-tuning epochs (fake-quantized weights, straight-through gradients)
    lr: float = 0.001                          # AdamW peak learning rate
    dir: str = "studies/finetune"              # writes <dir>/<study_name>/: assignment.json, model.aqsv, summary.md

    def __post_init__(self) -> None:
        check_int("finetune.epochs", self.epochs, 1)
        check_number("finetune.lr", self.lr, 0, lo_open=True)
        check_int("finetune.candidates", self.candidates, 1)
        if self.delta is not None:
            check_number("finetune.delta", self.delta, 0)


@dataclass(frozen=True)
class DashboardSettings:
    """``dashboard.*``: aqsvit dashboard."""

    host: str = "127.0.0.1"                    # bind address; 0.0.0.0 only when you mean it
    port: int = 8080

    def __post_init__(self) -> None:
        check_text("dashboard.host", self.host)
        check_int("dashboard.port", self.port, 1, 65535)


@dataclass(frozen=True)
class ModelSettings:
    """``model=<name>`` (conf/model/): a registered model or a builder ``target``; ``kwargs`` are
    the builder's own (checked by the model registry when the model is built)."""

    name: str = "spikformer_digits"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    target: str | None = None                  # package.module:builder (then name is unused)
    input_shape: tuple[int, ...] | None = None  # a target's input without the batch dim

    def spec(self) -> Any:
        """The registered model ``name``, or the builder ``target`` when set (its ModelSpec)."""
        from aqsvit.models import model_spec
        from aqsvit.models.target import target_spec

        if self.target:
            return target_spec(self.target, dict(self.kwargs), list(self.input_shape) if self.input_shape else None)
        return model_spec(self.name, **dict(self.kwargs))


@dataclass(frozen=True)
class DatasetSettings:
    """``dataset=<name>`` (conf/dataset/): a registered data set, its builder's ``kwargs`` and the
    input normalization (null: the model's preset)."""

    name: str = "digits"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    normalize: Any = None                      # none, cifar10, cifar100, imagenet or {mean: [..], std: [..]}


@dataclass(frozen=True)
class Settings:
    """Every setting of a run (the CLI's whole config), checked once when built."""

    search: SearchSettings = field(default_factory=SearchSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    quant: QuantSettings = field(default_factory=QuantSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    finetune: FinetuneOptions = field(default_factory=FinetuneOptions)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    dataset: DatasetSettings = field(default_factory=DatasetSettings)
    plugins: tuple[str, ...] = ()              # modules imported first: they register models, data sets, ...
    device: str = "auto"                       # auto (GPU worker % n_gpus, else CPU), cpu, cuda, cuda:<i>
    checkpoint: str | None = None              # FP reference checkpoint; null = train once, cache in checkpoint_dir
    checkpoint_dir: str = "studies/checkpoints"
    progress: bool = True                      # tqdm progress bars
    worker: int = 0                            # this process's index (set by the multirun sweep): picks its GPU

    def __post_init__(self) -> None:
        check_flag("progress", self.progress)
        check_int("worker", self.worker, 0, self.search.workers - 1)
        check_text("checkpoint_dir", self.checkpoint_dir)
        if self.checkpoint is not None:
            check_text("checkpoint", self.checkpoint)

    # the settings a search shares with the rest of the run
    @property
    def seed(self) -> int:
        return self.search.seed

    @property
    def delta(self) -> float:
        return self.search.delta

    @property
    def workers(self) -> int:
        return self.search.workers

    @property
    def final_delta(self) -> float:
        """The delta after fine-tuning (``finetune.delta``, else ``delta``)."""
        return self.delta if self.finetune.delta is None else self.finetune.delta

    @classmethod
    def from_config(cls, config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> Settings:
        """The run's settings from the composed config (a resolved plain dict or an OmegaConf
        node). ``AQSVIT_STORAGE`` in ``environ`` overrides ``storage.url`` (so that a password
        never lands in the config Hydra saves)."""
        if not isinstance(config, dict):
            from omegaconf import OmegaConf
            config = OmegaConf.to_container(config, resolve=True)
        c = {k: v for k, v in config.items() if k != "hydra"}
        search, quant = dict(c.get("search") or {}), dict(c.get("quant") or {})
        schemes = _list("quant.schemes", quant.pop("schemes", SearchSettings.schemes), "[uniform, pot]")
        bits = _list("quant.bits", quant.pop("bits", SearchSettings.bits), "[8, 4, 2]")
        report = ReportSettings(**_known(ReportSettings, c["report"]))
        evaluation = {k: search.pop(k) for k in EVAL_KEYS if k in search}
        sampler, pruner, target = dict(c["sampler"]), dict(c["pruner"]), dict(c.get("target") or {"name": "any"})
        target_name = target.pop("name", None)
        if target:  # a profile is its registration in Python (aqsvit.hardware), not config values
            raise AqsvitError(f"target.{next(iter(target))}: not an option of target {target_name!r}; allowed: name")
        run = SearchSettings(
            sampler=sampler.pop("name"), sampler_options=sampler, pruner=pruner.pop("name"), pruner_options=pruner,
            schemes=schemes, bits=bits, delta=c["delta"], seed=c["seed"], workers=c["workers"],
            grace_period=c["grace_period"], target=target_name, storage_url=environ.get("AQSVIT_STORAGE") or c["storage"]["url"],
            **{k: v for k, v in search.items() if k in SEARCH_KEYS})
        model, dataset = c["model"], c["dataset"]
        return cls(
            search=run, eval=EvalSettings(**evaluation, workers=run.workers), train=TrainSettings(**_known(TrainSettings, c["train"])),
            quant=QuantSettings(**_known(QuantSettings, quant)), report=report,
            export=ExportSettings(**_known(ExportSettings, c["export"])), finetune=FinetuneOptions(**_known(FinetuneOptions, c["finetune"])),
            dashboard=DashboardSettings(**_known(DashboardSettings, c["dashboard"])),
            model=ModelSettings(model["name"], model.get("kwargs") or {}, model.get("target"), model.get("input_shape")),
            dataset=DatasetSettings(dataset["name"], dataset.get("kwargs") or {}, dataset.get("normalize")),
            plugins=tuple(c["plugins"]), device=c["device"], checkpoint=c["checkpoint"],
            checkpoint_dir=c["checkpoint_dir"], progress=c["progress"], worker=c["worker"])


EVAL_KEYS = tuple(f.name for f in dataclasses.fields(EvalSettings) if f.name != "workers")  # search.<key>
ROOT_SEARCH_KEYS = ("delta", "seed", "workers", "grace_period")  # <key> -> SearchSettings.<key>
# SearchSettings fields the config holds elsewhere: its groups (sampler, pruner, target, storage) and quant.*
ELSEWHERE = ("sampler", "sampler_options", "pruner", "pruner_options", "target", "storage_url", "schemes", "bits")
# search.<key> -> SearchSettings.<key>: every other field, so a new search setting is one field
SEARCH_KEYS = tuple(f.name for f in dataclasses.fields(SearchSettings)
                    if f.init and f.name not in ELSEWHERE + ROOT_SEARCH_KEYS)
PLUGIN_GROUPS = ("model", "dataset", "sampler", "pruner", "storage", "target")  # chosen in the defaults list


def _defaults(cls: type, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``cls``'s defaults (of ``names``, else of every init field), as plain YAML values."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.init and (names is None or f.name in names):
            value = f.default_factory() if f.default is dataclasses.MISSING else f.default
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def config_defaults() -> dict[str, Any]:
    """The config's default values, nested as in conf/config.yaml, all taken from the dataclasses."""
    root = _defaults(Settings, ("plugins", "device", "checkpoint", "checkpoint_dir", "progress", "worker"))
    run = _defaults(SearchSettings)
    return {
        **root,
        "train": _defaults(TrainSettings),
        "quant": {"schemes": run["schemes"], "bits": run["bits"], **_defaults(QuantSettings)},
        **{k: run[k] for k in ROOT_SEARCH_KEYS},
        "search": {**{k: run[k] for k in SEARCH_KEYS}, **_defaults(EvalSettings, EVAL_KEYS)},
        "report": _defaults(ReportSettings),
        "export": _defaults(ExportSettings),
        "finetune": _defaults(FinetuneOptions),
        "dashboard": _defaults(DashboardSettings),
        **dict.fromkeys(PLUGIN_GROUPS),
    }


def config_keys() -> list[str]:
    """The config's top-level keys (an unknown key's error lists them)."""
    return sorted(config_defaults())


def _node(name: str, values: dict[str, Any]) -> type:
    """A structured config class with ``values`` as defaults, every field typed ``Any`` (the
    checks are the dataclasses' own, see the module docstring)."""
    fields = []
    for key, value in values.items():
        if isinstance(value, dict):
            default = field(default_factory=_node(f"{name}_{key}", value))
        elif isinstance(value, list):
            default = field(default_factory=lambda v=value: list(v))
        else:
            default = field(default=value)
        fields.append((key, Any, default))
    return dataclasses.make_dataclass(name, fields)


def register_configs() -> None:
    """Store the schema's defaults as Hydra's structured config ``aqsvit_schema`` (idempotent)."""
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name=SCHEMA_NAME, node=_node("AqsvitConfig", config_defaults()))
