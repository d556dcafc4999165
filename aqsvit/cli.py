"""Command line: ``aqsvit <command> [hydra overrides]``. The only module that knows Hydra.

Commands: search (the main job), report (HTML report, PNGs, exports), dashboard (optuna-dashboard),
train (the FP reference), baseline (one bit width for all), finetune (quantization-aware fine-tuning).
Every mistake a user can make ends as one line on stderr and exit code 2; ``--debug`` shows the
traceback instead.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aqsvit  # noqa: F401  (silences spikingjelly's import-time warning first)
from aqsvit.errors import AqsvitError, check_flag, check_int, check_number, check_text, invalid

log = logging.getLogger("aqsvit")
CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # package data: ships in the wheel
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


def _container(node: Any) -> Any:
    from omegaconf import OmegaConf
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def _model_id(name: str, target: str | None = None) -> str:
    """``${aqsvit_model:${model.name},${model.target}}``: a target's builder name, else the model name."""
    from aqsvit.models.target import target_name
    return target_name(target) if target else name


def _register_resolvers() -> None:
    from omegaconf import OmegaConf
    OmegaConf.register_new_resolver("aqsvit_model", _model_id, replace=True)


_register_resolvers()


def _model_spec(cfg):
    """The registered model ``model.name``, or the builder ``model.target`` when set."""
    from aqsvit.models import model_spec
    from aqsvit.models.target import target_spec

    target = cfg.model.get("target")
    if target:
        return target_spec(target, _container(cfg.model.kwargs), _container(cfg.model.get("input_shape")) or None)
    return model_spec(cfg.model.name, **_container(cfg.model.kwargs))


def _reference(cfg, device: str = "cpu", searchable: bool = True, spec=None, untrained: str | None = None):
    """Model spec (``spec``, else the config's), data and FP reference checkpoint (trained and
    cached on first use, unless ``untrained`` says why not); with ``searchable`` a reference at
    chance level is refused (every assignment would look lossless)."""
    import torch

    from omegaconf import OmegaConf

    from aqsvit.data import load_dataset
    from aqsvit.data.preprocess import resolve_preprocess
    from aqsvit.models import ModelInfo, create_model, model_info
    from aqsvit.models.target import check_classifier
    from aqsvit.training import check_labels, check_learned, get_reference

    torch.manual_seed(cfg.seed)
    spec = spec or _model_spec(cfg)
    normalize = cfg.dataset.get("normalize")  # null: the model's preset
    info = ModelInfo(spec.name) if spec.target else model_info(spec.name)
    preprocess = resolve_preprocess(OmegaConf.to_container(normalize) if OmegaConf.is_config(normalize) else normalize,
                                    info.preprocess, info.crop_pct)
    data = load_dataset(cfg.dataset.name, spec.input_shape, preprocess, seed=cfg.seed, **_container(cfg.dataset.kwargs))
    check_labels(spec, data)
    if spec.target:  # before any training: a wrong model fails as one line
        check_classifier(create_model(spec), spec.input_shape, data.num_classes, spec.target)
    ckpt = get_reference(spec, data, root=cfg.checkpoint_dir, checkpoint=cfg.checkpoint, progress=cfg.progress,
                         seed=cfg.seed, device=device, untrained=untrained, **_container(cfg.train))
    if searchable:
        check_learned(data, ckpt.fp_accuracy)
    return spec, data, ckpt


def train_command(cfg) -> None:
    """Train (or load from cache) the full-precision reference and print its accuracy."""
    from aqsvit.devices import pin_worker

    from aqsvit.errors import AqsvitError
    from aqsvit.training import check_learned

    spec, data, ckpt = _reference(cfg, pin_worker(cfg.device), searchable=False)
    print(f"{spec.name} on {data.name}: FP accuracy {ckpt.fp_accuracy:.2f}% "
          f"(checkpoint sha256 {ckpt.sha256[:12]})")
    try:
        check_learned(data, ckpt.fp_accuracy)
    except AqsvitError as refused:  # inspecting a checkpoint is fine; searching it is not
        print(f"note: search and baseline will refuse it: {refused}")


def baseline_command(cfg) -> None:
    """The hand-made baseline: every scheme x bits applied to the whole network."""
    from aqsvit.report import MEASUREMENT_HEADERS, markdown_table, measurement_cells
    from aqsvit.devices import pin_worker
    from aqsvit.search.baselines import one_width_baseline
    from aqsvit.search.evaluator import Evaluator

    device = pin_worker(cfg.device)
    spec, data, ckpt = _reference(cfg, device)
    evaluator = Evaluator(ckpt.build(), data, ckpt.fp_accuracy, split_qkv=cfg.quant.split_qkv, device=device,
                          settings=_eval_settings(cfg))
    rows = one_width_baseline(evaluator, list(cfg.quant.schemes), list(cfg.quant.bits))
    print(f"\n{spec.name} on {data.name} ({len(evaluator.layers)} quantizable layers), "
          f"one scheme and width for all layers:\n")
    print(markdown_table(("scheme", "bits", *MEASUREMENT_HEADERS),
                         [(s, b, *measurement_cells(m)) for s, b, m in rows]))


def search_settings(cfg):
    """Map the Hydra config onto the plain :class:`SearchSettings` (storage URL from AQSVIT_STORAGE
    when set, so a password never lands in the config Hydra saves)."""
    from aqsvit.search.settings import SearchSettings

    s = cfg.search
    return SearchSettings(
        sampler=cfg.sampler.name, sampler_options=_group_options(cfg.sampler), granularity=s.granularity,
        order=s.order,
        start=s.start,
        schemes=tuple(cfg.quant.schemes), bits=tuple(cfg.quant.bits), delta=cfg.delta,
        pruner=cfg.pruner.name, pruner_options=_group_options(cfg.pruner),
        staged=s.staged, screen=s.screen, calib_images=s.calib_images, calib_batch=s.calib_batch, n_trials=s.n_trials,
        seed=cfg.seed, study_name=s.study_name, workers=cfg.workers, grace_period=cfg.grace_period,
        storage_url=os.environ.get("AQSVIT_STORAGE") or cfg.storage.url,
        force_new_study=cfg.search.force_new_study)


def _group_options(group) -> dict:
    """A plug-in group's keys besides ``name``: the options its registered settings take."""
    return {k: v for k, v in _container(group).items() if k != "name"}


def check_config(cfg) -> None:
    """Every config value, checked before any command does work (one line naming the field)."""
    from omegaconf import ListConfig

    for field, example in (("quant.schemes", "[uniform, pot]"), ("quant.bits", "[8, 4, 2]"),
                           ("report.compare", "[name-of-another-study]")):
        group, key = field.split(".")
        if not isinstance(cfg[group][key], ListConfig):
            raise invalid(field, cfg[group][key], f"a list, e.g. {field}={example}")
    search_settings(cfg).validate()
    check_flag("progress", cfg.progress)
    check_int("worker", cfg.worker, 0, cfg.workers - 1)
    check_int("train.epochs", cfg.train.epochs, 1)
    check_number("train.lr", cfg.train.lr, 0, lo_open=True)
    check_int("train.batch_size", cfg.train.batch_size, 1)
    check_flag("quant.split_qkv", cfg.quant.split_qkv)
    check_text("checkpoint_dir", cfg.checkpoint_dir)
    if cfg.checkpoint is not None:
        check_text("checkpoint", cfg.checkpoint)
    check_text("report.dir", cfg.report.dir)
    for name in cfg.report.compare:
        check_text("report.compare", name)
    check_text("dashboard.host", cfg.dashboard.host)
    check_int("dashboard.port", cfg.dashboard.port, 1, 65535)
    _finetune_settings(cfg)
    _eval_settings(cfg)


def _eval_settings(cfg):
    """search.eval_batch, eval_memory_gb, cache_gb and loader_workers, checked before any expensive work."""
    from aqsvit.data.prepared import EvalSettings

    s = cfg.search
    settings = EvalSettings(s.eval_batch, s.eval_memory_gb, s.cache_gb, s.loader_workers, cfg.workers)
    settings.validate()
    return settings


def _search_setup(cfg, command: str = "search"):
    """Validated settings, storage, device, reference and the created-or-resumed study. Any
    ``command`` but search only reads: the study must exist, and nothing is trained or written."""
    import optuna

    from aqsvit.devices import pin_worker
    from aqsvit.search.evaluator import Evaluator
    from aqsvit.search.existing import load_existing, open_existing, recorded_fingerprint, stored_file_missing
    from aqsvit.search.fingerprint import REFERENCE_KEY, compare_fingerprint
    from aqsvit.search.run import prepare
    from aqsvit.search.storages import check_storage, create_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = search_settings(cfg)  # validated by check_config
    eval_settings = _eval_settings(cfg)
    device = pin_worker(cfg.device, cfg.worker, cfg.workers)
    reading = command != "search"
    if reading:
        storage = open_existing(settings.storage_url, settings.grace_period, command)
        load_existing(storage, settings.study_name)
    else:
        # a server is reached (and an existing file opened) now, so a wrong URL or a study made with
        # another model fails before any training; a new study file is only created by prepare,
        # once the checkpoint, the data and the settings that need them have passed
        check_storage(settings.storage_url, settings.workers)
        storage = None if stored_file_missing(settings.storage_url) else create_storage(
            settings.storage_url, settings.workers, settings.grace_period, retry_failed=not settings.stepwise)
    spec = _model_spec(cfg)
    recorded = None
    if storage is not None and not settings.force_new_study:
        recorded = recorded_fingerprint(storage, settings.study_name)
        if reading or recorded is not None:
            compare_fingerprint(settings.study_name, recorded, {"model": spec.describe()})
    if reading:
        untrained = f"aqsvit {command} only reads: run aqsvit search with the same settings first, or give checkpoint=FILE"
    elif recorded is not None:
        untrained = (f"study {settings.study_name!r} was made on reference {recorded.get(REFERENCE_KEY)}, and a newly "
                     "trained one would not resume it: use the train.* settings, seed and checkpoint_dir it was made "
                     "with, give checkpoint=FILE, or pass --force-new-study")
    else:
        untrained = None
    spec, data, ckpt = _reference(cfg, device, spec=spec, untrained=untrained)
    evaluator = Evaluator(ckpt.build(), data, ckpt.fp_accuracy, split_qkv=cfg.quant.split_qkv, device=device,
                          settings=eval_settings)
    return prepare(evaluator, settings, f"{ckpt.sha256[:16]}-{data.fingerprint}", cfg.checkpoint_dir, storage,
                   read_only=reading)


def search_command(cfg) -> None:
    """Run (or resume) the search and print the chosen assignment and its figures."""
    import time

    from aqsvit.report import MEASUREMENT_HEADERS, markdown_table, measurement_cells
    from aqsvit.search.run import run, summarize
    from aqsvit.search.storages import redact

    started = time.perf_counter()
    aim_lower = cfg.finetune.delta is not None
    search = _search_setup(cfg)
    settings, evaluator = search.settings, search.evaluator
    spec, data = evaluator.model.spec, evaluator.data
    log.info("study %s on %s", settings.study_name, redact(settings.storage_url))
    run(search, progress=cfg.progress)
    summary = summarize(search)
    print(f"\n{settings.sampler} search, {spec.name} on {data.name}, FP accuracy {evaluator.fp_accuracy:.2f}%, "
          f"delta {settings.delta} points, study {settings.study_name!r} at {redact(settings.storage_url)}\n")
    if summary.choices is None:
        print("no feasible assignment found")
        return
    print(markdown_table(("unit", "scheme", "bits"),
                         [(u.name, *summary.choices[u.name]) for u in search.space.units]))
    print()
    m = summary.measurement
    print(markdown_table(("assignment", *MEASUREMENT_HEADERS), [("fp32", *measurement_cells(evaluator.measure({}))),
                                                               ("chosen", *measurement_cells(m))]))
    print(f"\ntrials {summary.trials} ({summary.probes} probes), pruned {summary.pruned}, "
          f"accepted on the screen {summary.screened}, "
          f"fully evaluated {summary.full_evaluations}, "
          f"images evaluated {summary.images} (+{search.setup_images} ordering the screen), "
          f"cost {summary.cost:.1f} full evaluations, search wall time {summary.wall_seconds:.1f} s "
          f"(this command: {time.perf_counter() - started:.1f} s)")
    if aim_lower:
        print(f"\nfine-tuning the {cfg.finetune.candidates} smallest feasible assignments "
              f"(post-training delta {settings.delta}, final delta {cfg.finetune.delta}):")
        _finetune_study(cfg, search)


def _finetune_settings(cfg):
    from aqsvit.finetune import FinetuneSettings

    settings = FinetuneSettings(epochs=cfg.finetune.epochs, lr=cfg.finetune.lr, batch_size=cfg.train.batch_size,
                                seed=cfg.seed)
    settings.validate()
    check_int("finetune.candidates", cfg.finetune.candidates, 1)
    if cfg.finetune.delta is not None:
        check_number("finetune.delta", cfg.finetune.delta, 0)
    return settings


def _finetune_study(cfg, search) -> None:
    """Fine-tune the study's smallest feasible assignments; export the smallest within the final delta."""
    from aqsvit.finetune import front_candidates

    delta = cfg.delta if cfg.finetune.delta is None else cfg.finetune.delta
    trials = front_candidates(search.study, cfg.finetune.candidates, search.evaluator.fp_accuracy, delta)
    if not trials:
        raise AqsvitError(f"study {search.settings.study_name!r} has no feasible assignment to fine-tune; "
                          "run aqsvit search first (same settings)")
    space = search.space
    assignments = [space.assignment(space.choices_from_params(t.params)) for t in trials]
    _finetune_and_export(cfg, search.evaluator, assignments, search.settings.study_name)


def _finetune_and_export(cfg, evaluator, assignments, name: str) -> None:
    from aqsvit.finetune import finetune_front
    from aqsvit.report import MEASUREMENT_HEADERS, markdown_table, measurement_cells
    from aqsvit.report.export import assignment_json, save_packed

    settings = _finetune_settings(cfg)
    delta = cfg.delta if cfg.finetune.delta is None else cfg.finetune.delta
    best, tried = finetune_front(evaluator, assignments, delta, settings, progress=cfg.progress)
    rows = [(f"#{i} {stage}", *measurement_cells(m))
            for i, t in enumerate(tried, 1) for stage, m in (("before", t.before), ("after", t.after))]
    table = markdown_table(("assignment", *MEASUREMENT_HEADERS), rows)
    seconds = sum(t.seconds for t in tried)
    print(f"\n{table}\n\nfine-tuned {len(tried)} assignment(s), {settings.epochs} epochs each, {seconds:.1f} s")
    if best is None:
        print(f"no assignment is within delta {delta} after fine-tuning: nothing exported")
        return
    out = Path(cfg.finetune.dir) / name
    out.mkdir(parents=True, exist_ok=True)
    spec = evaluator.model.spec
    (out / "assignment.json").write_text(assignment_json(spec, best.assignment, best.after.as_dict()))
    save_packed(out / "model.aqsv", best.evaluator.model, best.assignment, split_qkv=evaluator.quantizer.split_qkv)
    (out / "summary.md").write_text(f"# Fine-tuned {name}\n\nfinal delta {delta}\n\n{table}\n")
    m = best.after
    print(f"chosen: #{tried.index(best) + 1}, {m.effective_bits:.2f} effective bits ({m.weight_compression:.2f}x), "
          f"accuracy {m.accuracy:.2f}% (drop {m.drop:.2f}); wrote {out}/assignment.json, model.aqsv, summary.md")


def finetune_command(cfg) -> None:
    """Fine-tune an exported assignment (finetune.assignment) or the study's smallest feasible ones."""
    from aqsvit.devices import pin_worker
    from aqsvit.report.export import read_assignment
    from aqsvit.search.evaluator import Evaluator

    if cfg.finetune.assignment is None:
        _finetune_study(cfg, _search_setup(cfg, "finetune"))
        return
    spec, assignment = read_assignment(cfg.finetune.assignment, target=cfg.model.get("target"))
    device = pin_worker(cfg.device)
    config_spec, data, ckpt = _reference(
        cfg, device, untrained="aqsvit finetune only reads: give the checkpoint the assignment was searched on "
                               "(checkpoint=FILE), or the settings that trained it")
    if spec != config_spec:
        raise AqsvitError(f"finetune.assignment: {cfg.finetune.assignment} is for model {spec.name} "
                          f"{spec.plain_kwargs()}, the config's model is {config_spec.name} {config_spec.plain_kwargs()}")
    evaluator = Evaluator(ckpt.build(), data, ckpt.fp_accuracy, split_qkv=cfg.quant.split_qkv, device=device,
                          settings=_eval_settings(cfg))
    _finetune_and_export(cfg, evaluator, [assignment], Path(cfg.finetune.assignment).parent.name or "assignment")


def report_command(cfg) -> None:
    """Write the HTML report, PNGs, Markdown summary, assignment JSON and packed model of a study."""
    from aqsvit.report.build import write_report
    from aqsvit.search.existing import load_existing
    from aqsvit.search.baselines import one_width_baseline
    from aqsvit.search.run import summarize

    search = _search_setup(cfg, "report")
    compare = [load_existing(search.study._storage, n, "report.compare") for n in cfg.report.compare]
    summary = summarize(search)
    baselines = one_width_baseline(search.evaluator, list(cfg.quant.schemes), list(cfg.quant.bits))
    out = Path(cfg.report.dir) / search.settings.study_name
    paths = write_report(search, summary, baselines, out, compare)
    for name, path in paths.items():
        print(f"{name}: {path}")


def dashboard_command(cfg) -> None:
    """Serve optuna-dashboard on the study's storage (127.0.0.1 unless dashboard.host says otherwise)."""
    from aqsvit.report.dashboard import serve
    from aqsvit.search.existing import load_existing, open_existing
    from aqsvit.search.fingerprint import compare_fingerprint
    from aqsvit.search.vocabulary import FINGERPRINT_ATTR
    from aqsvit.search.storages import redact

    settings = search_settings(cfg)
    storage = open_existing(settings.storage_url, settings.grace_period, "dashboard")
    study = load_existing(storage, settings.study_name)
    compare_fingerprint(study.study_name, study.user_attrs.get(FINGERPRINT_ATTR), {})  # a study aqsvit made
    serve(storage, settings.study_name, cfg.dashboard.host, cfg.dashboard.port, where=redact(settings.storage_url))


COMMANDS: dict[str, Callable[[Any], None]] = {
    "search": search_command, "report": report_command, "dashboard": dashboard_command,
    "train": train_command, "baseline": baseline_command, "finetune": finetune_command}

USAGE = (f"usage: aqsvit {{{','.join(COMMANDS)},models}} [--debug] [--force-new-study] "
         "[hydra overrides, e.g. model=spikformer_wide]")


def models_listing() -> str:
    """``aqsvit models``: every registered model, the published code it computes and its input preset."""
    from aqsvit.models import list_models, model_info

    rows = [(name, info.preprocess, info.reference or "spikingjelly's own (no published reference)")
            for name, info in ((n, model_info(n)) for n in list_models())]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'model':<{width}}  {'preprocess':<10}  reference"]
    lines += [f"{name:<{width}}  {pre:<10}  {ref}" for name, pre, ref in rows]
    return "\n".join(lines)


def builder_kwargs(args: list[str]) -> list[str]:
    """``model.kwargs.<arg>=v`` -> ``++model.kwargs.<arg>=v``: every builder argument can be set
    without Hydra's ``+`` (the model config lists no defaults; the registry checks the name)."""
    return [f"++{a}" if a.startswith("model.kwargs.") else a for a in args]


@contextmanager
def _one_line_errors(debug: bool) -> Iterator[None]:
    """An AqsvitError becomes one line on stderr and exit code 2 (unless --debug)."""
    try:
        yield
    except AqsvitError as exc:
        if debug:
            raise
        print(f"aqsvit: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _guarded(command: str, debug: bool) -> Callable[[Any], None]:
    """The Hydra task: redact Hydra's saved files, then run the command with one-line errors; Ctrl-C
    is one line too (exit 130): every finished trial is kept, and the same command resumes."""
    def task(cfg) -> None:
        _redact_hydra_outputs()
        try:
            with _one_line_errors(debug):
                import_plugins(cfg.plugins)
                check_config(cfg)
                if command != "search" and cfg.search.force_new_study:
                    raise AqsvitError(f"search.force_new_study (--force-new-study): only aqsvit search starts a "
                                      f"study over; allowed for aqsvit {command}: false (it only reads)")
                COMMANDS[command](cfg)
        except KeyboardInterrupt:
            if debug:
                raise
            print(f"aqsvit: interrupted; finished trials are kept: run the same aqsvit {command} again to "
                  "resume", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
    task.__name__ = COMMANDS[command].__name__
    return task


def _redact_hydra_outputs() -> None:
    """Hydra saves the config and the overrides under the run folder: keep no password there."""
    from hydra.core.hydra_config import HydraConfig

    from aqsvit.search.storages import redact

    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    files = list((Path(hc.runtime.output_dir) / (hc.output_subdir or ".hydra")).glob("*.yaml"))
    files += list(Path(hc.sweep.dir).glob("multirun.yaml"))
    for file in files:
        text = file.read_text()
        if redact(text) != text:
            file.write_text(redact(text))


FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp",
                    "--config-dir", "-cd", "--info", "-i", "--experimental-rerun"}


def import_plugins(modules: Any) -> None:
    """Import the ``plugins`` modules (from the working folder too, as ``python -m`` would): they
    register their models, data sets, samplers, pruners and drift definitions on import."""
    import importlib

    from omegaconf import ListConfig

    if not isinstance(modules, (list, ListConfig)):
        raise invalid("plugins", modules, "a list of module names, e.g. plugins=[my_package.aqsvit_plugins]")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    for name in modules:
        check_text("plugins", name, r"[A-Za-z_][\w.]*", "importable module names, e.g. my_package.plugins")
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise invalid("plugins", name, f"importable module names ({exc})") from exc


def _config_dirs(overrides: list[str]) -> list[Path]:
    """conf/ and the folders a ``hydra.searchpath=[file://...]`` override adds (where plug-ins
    keep their group yaml files)."""
    dirs = [Path(CONF_DIR)]
    for override in overrides:
        if override.lstrip("+").startswith("hydra.searchpath="):
            dirs += [Path(p) for p in re.findall(r"file://([^,\]\s'\"]+)", override)]
    return dirs


def check_overrides(args: list[str]) -> None:
    """Compose the config once with the plain (non-sweep) overrides, so that an unknown group
    option or key fails as one line before Hydra starts anything."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in FLAGS_WITH_VALUE
        else:
            words.append(arg)
    try:
        overrides = OverridesParser.create().parse_overrides(words)
        searchpath = [o.input_line for o in overrides if o.key_or_group == "hydra.searchpath"]
        plain = [o.input_line for o in overrides
                 if not o.is_sweep_override() and not o.key_or_group.startswith(("hydra", "~hydra"))] + searchpath
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            compose("config", overrides=plain)
    except Exception as exc:
        message = str(exc)
        missing = re.search(r"Could not find '([\w/]+)/([^']+)'", message)
        if missing:
            group, value = missing.groups()
            options = sorted({p.stem for d in _config_dirs(words) for p in (d / group).glob("*.yaml")})
            raise AqsvitError(f"{group}: got {value!r}; allowed: {', '.join(options)}") from exc
        unknown = re.search(r"Could not override '([^']+)'", message)
        if unknown:
            from omegaconf import OmegaConf
            top = OmegaConf.load(Path(CONF_DIR) / "config.yaml")
            keys = sorted(k for k in top if k not in ("defaults", "hydra")) + ["dataset", "model", "pruner", "sampler", "storage"]
            raise AqsvitError(f"{unknown.group(1)}: not a config key; allowed: {', '.join(sorted(keys))} "
                              "(and their sub-keys: aqsvit search --cfg job)") from exc
        first = next((line.strip() for line in message.splitlines() if line.strip()), type(exc).__name__)
        raise AqsvitError(f"overrides: {first}") from exc


def _redact_logs() -> None:
    """Every log record (ours, Optuna's, Hydra's launcher listing job overrides) loses passwords."""
    from aqsvit.search.storages import redact

    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = redact(message), None
        return record
    logging.setLogRecordFactory(factory)


class _QuietInterrupt(logging.Filter):
    """Optuna logs the trial a Ctrl-C stopped as a failure, traceback and all (two records); the
    CLI says it in one line instead."""

    interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            self.interrupted = True
            return False
        return not (self.interrupted and "failed with value" in record.getMessage())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``aqsvit`` console script."""
    import hydra

    _redact_logs()
    optimize_log = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _QuietInterrupt) for f in optimize_log.filters):
        optimize_log.addFilter(_QuietInterrupt())
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if "--force-new-study" in args:  # a flag for the override: it deletes the old study's trials
        args = [a for a in args if a != "--force-new-study"] + ["search.force_new_study=true"]
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return
    command, rest = args[0], builder_kwargs(args[1:])
    if command == "models":
        print(models_listing())
        return
    with _one_line_errors(debug):
        if command not in COMMANDS:
            raise invalid("command", command, COMMANDS)
        if "--experimental-rerun" in rest:  # Hydra would unpickle the run's saved config: code from a file
            raise AqsvitError("--experimental-rerun: not allowed (it loads a pickle, which can run code); allowed: "
                              "the same command with the overrides saved in the run's .hydra/overrides.yaml")
        check_overrides(rest)
    sys.argv = [f"aqsvit-{command}", *rest]
    hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")(_guarded(command, debug))()


if __name__ == "__main__":
    main()
