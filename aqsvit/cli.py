"""Command line: ``aqsvit <command> [hydra overrides]``. The only module that knows Hydra.

Commands: search (the main job), report (HTML report, PNGs, exports), export (the result as its
hardware target takes it, checked; NIR), dashboard (optuna-dashboard),
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
from aqsvit.errors import AqsvitError, check_text, invalid
from aqsvit.settings import Settings, config_keys, register_configs

log = logging.getLogger("aqsvit")
CONF_DIR = str(Path(__file__).resolve().parent / "conf")  # package data: ships in the wheel
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


def _model_id(name: str, target: str | None = None) -> str:
    """``${aqsvit_model:${model.name},${model.target}}``: a target's builder name, else the model name."""
    from aqsvit.models.target import target_name
    return target_name(target) if target else name


def _target_suffix(name: str) -> str:
    """``${aqsvit_target:${target.name}}``: ``-<target>`` in a study name, nothing for ``any`` (so a
    search for a chip is its own study, and studies named before targets keep their names)."""
    return "" if name == "any" else f"-{name}"


def _register_configs() -> None:
    """The schema's structured config (conf/config.yaml lists it first) and the study name's resolver."""
    from omegaconf import OmegaConf
    OmegaConf.register_new_resolver("aqsvit_model", _model_id, replace=True)
    OmegaConf.register_new_resolver("aqsvit_target", _target_suffix, replace=True)
    register_configs()


_register_configs()


def check_config(cfg) -> Settings:
    """Every config value, checked once before any command does work (one line naming the field)."""
    return Settings.from_config(cfg)


# The commands import the assembler (aqsvit.search.setup: torch, spikingjelly, Optuna) when they run,
# so that `aqsvit --help`, `aqsvit models` and a refused override answer without loading them.

def train_command(s: Settings) -> None:
    """Train (or load from cache) the full-precision reference and print its accuracy."""
    from aqsvit.search import setup
    from aqsvit.training import check_learned

    ref = setup.reference(s, setup.pin_worker(s.device), searchable=False)
    print(f"{ref.spec.name} on {ref.data.name}: FP accuracy {ref.checkpoint.fp_accuracy:.2f}% "
          f"(checkpoint sha256 {ref.checkpoint.sha256[:12]})")
    try:
        check_learned(ref.data, ref.checkpoint.fp_accuracy)
    except AqsvitError as refused:  # inspecting a checkpoint is fine; searching it is not
        print(f"note: search and baseline will refuse it: {refused}")


def baseline_command(s: Settings) -> None:
    """The hand-made baseline: every scheme x bits applied to the whole network."""
    from aqsvit.report import MEASUREMENT_HEADERS, markdown_table, measurement_cells
    from aqsvit.search import setup
    from aqsvit.search.baselines import one_width_baseline

    device = setup.pin_worker(s.device)
    ref = setup.reference(s, device)
    evaluator = ref.evaluator(s, device)
    rows = one_width_baseline(evaluator, list(s.search.schemes), list(s.search.bits))
    print(f"\n{ref.spec.name} on {ref.data.name} ({len(evaluator.layers)} quantizable layers), "
          f"one scheme and width for all layers:\n")
    print(markdown_table(("scheme", "bits", *MEASUREMENT_HEADERS),
                         [(sc, b, *measurement_cells(m)) for sc, b, m in rows]))


def search_command(s: Settings) -> None:
    """Run (or resume) the search and print the chosen assignment and its figures."""
    import time

    from aqsvit.report import MEASUREMENT_HEADERS, markdown_table, measurement_cells
    from aqsvit.search import setup
    from aqsvit.search.run import run, summarize
    from aqsvit.search.storages import redact

    started = time.perf_counter()
    search = setup.search_for(s)
    settings, evaluator = search.settings, search.evaluator
    spec, data = evaluator.model.spec, evaluator.data
    log.info("study %s on %s", settings.study_name, redact(settings.storage_url))
    run(search, progress=s.progress)
    summary = summarize(search)
    target = "" if settings.target == "any" else f", for {evaluator.target.describe()}"
    print(f"\n{settings.sampler} search, {spec.name} on {data.name}{target}, FP accuracy {evaluator.fp_accuracy:.2f}%, "
          f"delta {settings.delta} points, study {settings.study_name!r} at {redact(settings.storage_url)}\n")
    if summary.choices is None and not settings.stepwise:  # Optuna's samplers: none within their n_trials
        print("no feasible assignment found")
        return
    if summary.choices is None:  # the walk's start, the most precise assignment, is not within delta
        holds = "" if settings.target == "any" else f" target {settings.target} holds"
        raise AqsvitError(f"delta: no assignment{holds} keeps the accuracy within {settings.delta} points of the FP "
                          f"{evaluator.fp_accuracy:.2f}% (study {settings.study_name!r}); allowed: a larger delta"
                          f"{'' if settings.target == 'any' else ', or another target'}")
    print(markdown_table(("unit", "scheme", "bits"),
                         [(u.name, *summary.choices[u.name]) for u in search.space.units]))
    print()
    m = summary.measurement
    print(markdown_table(("assignment", *MEASUREMENT_HEADERS), [("fp32", *measurement_cells(evaluator.measure({}))),
                                                               ("chosen", *measurement_cells(m))]))
    if settings.front:  # every delta the study answers (all its walks'): aqsvit pick delta=X reads any of them back
        from aqsvit.report.tables import FRONT_HEADERS, front_rows
        from aqsvit.search.front import answered
        from aqsvit.search.vocabulary import CONTEXT_ATTR
        deltas = answered(search.study.user_attrs[CONTEXT_ATTR])
        print("\nthe front (aqsvit pick delta=X answers any delta from it):\n")
        print(markdown_table(FRONT_HEADERS, front_rows(search.study.get_trials(deepcopy=False), deltas)))
    print(f"\ntrials {summary.trials} ({summary.probes} probes), pruned {summary.pruned}, "
          f"accepted on the screen {summary.screened}, "
          f"fully evaluated {summary.full_evaluations}, "
          f"images evaluated {summary.images} (+{search.setup_images} ordering the screen), "
          f"cost {summary.cost:.1f} full evaluations, search wall time {summary.wall_seconds:.1f} s "
          f"(this command: {time.perf_counter() - started:.1f} s)")
    if s.finetune.delta is not None:  # aim lower
        print(f"\nfine-tuning the {s.finetune.candidates} smallest feasible assignments "
              f"(post-training delta {settings.delta}, final delta {s.finetune.delta}):")
        _finetune_study(s, search)


def _finetune_study(s: Settings, search) -> None:
    """Fine-tune the study's smallest feasible assignments; export the smallest within the final delta."""
    from aqsvit.finetune import front_candidates

    trials = front_candidates(search.study, s.finetune.candidates, search.evaluator.fp_accuracy, s.final_delta)
    if not trials:
        raise AqsvitError(f"study {search.settings.study_name!r} has no feasible assignment to fine-tune; "
                          "run aqsvit search first (same settings)")
    space = search.space
    assignments = [space.assignment(space.choices_from_params(t.params)) for t in trials]
    _finetune_and_export(s, search.evaluator, assignments, search.settings.study_name)


def _finetune_and_export(s: Settings, evaluator, assignments, name: str) -> None:
    from aqsvit.finetune import FinetuneSettings, finetune_front
    from aqsvit.report import MEASUREMENT_HEADERS, markdown_table, measurement_cells
    from aqsvit.report.export import assignment_json, save_model

    settings = FinetuneSettings(s.finetune.epochs, s.finetune.lr, s.train.batch_size, s.seed)
    delta = s.final_delta
    best, tried = finetune_front(evaluator, assignments, delta, settings, progress=s.progress)
    rows = [(f"#{i} {stage}", *measurement_cells(m))
            for i, t in enumerate(tried, 1) for stage, m in (("before", t.before), ("after", t.after))]
    table = markdown_table(("assignment", *MEASUREMENT_HEADERS), rows)
    seconds = sum(t.seconds for t in tried)
    print(f"\n{table}\n\nfine-tuned {len(tried)} assignment(s), {settings.epochs} epochs each, {seconds:.1f} s")
    if best is None:
        print(f"no assignment is within delta {delta} after fine-tuning: nothing exported")
        return
    out = Path(s.finetune.dir) / name
    out.mkdir(parents=True, exist_ok=True)
    spec = evaluator.model.spec
    (out / "assignment.json").write_text(assignment_json(spec, best.assignment, best.after.as_dict()))
    model = save_model(out, best.evaluator.model, best.assignment, evaluator.target, evaluator.quantizer.split_qkv)
    (out / "summary.md").write_text(f"# Fine-tuned {name}\n\nhardware target: {evaluator.target.describe()}\n\n"
                                    f"final delta {delta}\n\n{table}\n")
    m = best.after
    print(f"chosen: #{tried.index(best) + 1}, {m.effective_bits:.2f} effective bits ({m.weight_compression:.2f}x), "
          f"accuracy {m.accuracy:.2f}% (drop {m.drop:.2f}); wrote {out}/assignment.json, {model.name}, summary.md")


def finetune_command(s: Settings) -> None:
    """Fine-tune an exported assignment (finetune.assignment) or the study's smallest feasible ones."""
    from aqsvit.report.export import read_assignment
    from aqsvit.search import setup

    if s.finetune.assignment is None:
        _finetune_study(s, setup.search_for(s, "finetune"))
        return
    spec, assignment = read_assignment(s.finetune.assignment, target=s.model.target)
    device = setup.pin_worker(s.device)
    ref = setup.reference(
        s, device, untrained="aqsvit finetune only reads: give the checkpoint the assignment was searched on "
                             "(checkpoint=FILE), or the settings that trained it")
    if spec != ref.spec:
        raise AqsvitError(f"finetune.assignment: {s.finetune.assignment} is for model {spec.name} "
                          f"{spec.plain_kwargs()}, the config's model is {ref.spec.name} {ref.spec.plain_kwargs()}")
    _finetune_and_export(s, ref.evaluator(s, device), [assignment], Path(s.finetune.assignment).parent.name or "assignment")


def report_command(s: Settings) -> None:
    """Write the HTML report, PNGs, Markdown summary, assignment JSON and packed model of a study."""
    from aqsvit.report.build import write_report
    from aqsvit.search import setup
    from aqsvit.search.baselines import one_width_baseline
    from aqsvit.search.existing import load_existing
    from aqsvit.search.run import summarize

    search = setup.search_for(s, "report")
    compare = [load_existing(search.study._storage, n, "report.compare") for n in s.report.compare]
    summary = summarize(search)
    baselines = one_width_baseline(search.evaluator, list(s.search.schemes), list(s.search.bits))
    out = Path(s.report.dir) / search.settings.study_name
    paths = write_report(search, summary, baselines, out, compare)
    for name, path in paths.items():
        print(f"{name}: {path}")


def export_command(s: Settings) -> None:
    """Write a study's result (or, with export.delta, its smallest measured trial within that delta)
    as its hardware target takes it, checked by the export's own forward; export.nir adds model.nir."""
    import copy
    from dataclasses import replace

    from aqsvit.evaluation import accuracy
    from aqsvit.report.export import assignment_json, load_model, save_model
    from aqsvit.search import setup
    from aqsvit.search.front import pick
    from aqsvit.search.run import summarize

    search = setup.search_for(s, "export")
    space, evaluator = search.space, search.evaluator
    if s.export.delta is None:
        summary = summarize(search)
        if summary.choices is None:
            raise AqsvitError(f"study {search.settings.study_name!r} has no assignment within delta "
                              f"{search.settings.delta}; allowed: export.delta=<a delta the study holds>")
        choices, measurement = summary.choices, summary.measurement
    else:
        trial = pick(search.study.get_trials(deepcopy=False), s.export.delta)
        if trial is None:
            raise AqsvitError(f"export.delta: got {s.export.delta}; study {search.settings.study_name!r} holds no "
                              "trial measured on the whole split within it; allowed: a larger delta")
        choices = space.choices_from_params(trial.params)
        measurement = replace(evaluator.cost(space.assignment(choices)), accuracy=trial.values[0],
                              drop=evaluator.fp_accuracy - trial.values[0])
    assignment = space.assignment(choices)
    out = Path(s.export.dir) / search.settings.study_name
    out.mkdir(parents=True, exist_ok=True)
    (out / "assignment.json").write_text(assignment_json(evaluator.model.spec, assignment, measurement.as_dict()))
    model = save_model(out, evaluator.model, assignment, evaluator.target, evaluator.quantizer.split_qkv)
    rebuilt = load_model(model, copy.deepcopy(evaluator.model))  # the written file, as a chip's toolchain reads it
    exported = accuracy(rebuilt, evaluator.test, evaluator.eval_batch, evaluator.device)
    print(f"{model}: {evaluator.target.describe()}; its own forward {exported:.2f}% on the evaluation split, "
          f"the search measured {measurement.accuracy:.2f}%")
    if exported != measurement.accuracy:
        raise AqsvitError(f"export: {model} answers {exported:.2f}%, the search measured {measurement.accuracy:.2f}%")
    print(f"assignment: {out / 'assignment.json'}")
    if s.export.nir:
        import nir

        from aqsvit.data.bundle import iter_batches
        from aqsvit.report.nir_export import to_nir
        sample = next(iter_batches(evaluator.test, 8))[0]
        nir.write(out / "model.nir", to_nir(evaluator.model, sample, assignment, evaluator.target,
                                             evaluator.quantizer.split_qkv))
        print(f"nir: {out / 'model.nir'}")


def pick_command(s: Settings) -> None:
    """Print the study's measured front and its smallest assignment within ``delta``, read from the
    stored trials: no model is built and nothing is evaluated (export.delta and finetune take it)."""
    from aqsvit.report import markdown_table
    from aqsvit.report.tables import FRONT_HEADERS, front_rows
    from aqsvit.search import setup
    from aqsvit.search.front import answered, pick, stored_choices
    from aqsvit.search.vocabulary import CONTEXT_ATTR

    study = setup.stored_study(s, "pick")
    trials = study.get_trials(deepcopy=False)
    context = study.user_attrs.get(CONTEXT_ATTR, {})
    deltas = answered(context)
    print(f"study {study.study_name!r}: {context.get('model', '?')} on {context.get('dataset', '?')}, FP accuracy "
          f"{context.get('fp_accuracy', '?')}%, searched for delta {', '.join(f'{d:g}' for d in deltas)}\n")
    print(markdown_table(FRONT_HEADERS, front_rows(trials, sorted({*deltas, s.delta}))))
    chosen = pick(trials, s.delta)
    if chosen is None:
        raise AqsvitError(f"delta: got {s.delta}; study {study.study_name!r} holds no assignment measured on the whole "
                          f"split within it; allowed: a larger delta, or search again with search.front=[{s.delta:g}, ...]")
    print(f"\ndelta {s.delta:g}: trial {chosen.number}, accuracy {chosen.values[0]:.2f}%, "
          f"memory {chosen.values[1] / 1024:.2f} KiB{'' if s.delta in deltas else unwalked(s.delta, context)}\n")
    print(markdown_table(("unit", "scheme", "bits"), [(u, *c) for u, c in stored_choices(chosen).items()]))
    print(f"\nexport it: aqsvit export export.delta={s.delta:g} (then fine-tune the export: aqsvit finetune "
          f"finetune.assignment={Path(s.export.dir) / study.study_name / 'assignment.json'})")


def unwalked(delta: float, context: dict) -> str:
    """What ``aqsvit pick`` says of a ``delta`` the study (its ``context`` user attr) did not search
    for: a search for it may find less, and a front study walks it when resumed with it."""
    from aqsvit.search.front import FRONT_KEY, answered

    deltas = answered(context)
    note = f" (the study searched for {', '.join(f'{d:g}' for d in deltas)}: a search for {delta:g} may find less"
    if not context.get(FRONT_KEY):
        return note + ")"
    more = ",".join(f"{d:g}" for d in sorted({*deltas, delta}))
    return note + f"; walk it in this study: aqsvit search search.front=[{more}] with its settings)"


def dashboard_command(s: Settings) -> None:
    """Serve optuna-dashboard on the study's storage (127.0.0.1 unless dashboard.host says otherwise)."""
    from aqsvit.report.dashboard import serve
    from aqsvit.search import setup
    from aqsvit.search.storages import redact

    study = setup.stored_study(s, "dashboard")
    serve(study._storage, study.study_name, s.dashboard.host, s.dashboard.port, where=redact(s.search.storage_url))


COMMANDS: dict[str, Callable[[Settings], None]] = {
    "search": search_command, "report": report_command, "dashboard": dashboard_command, "export": export_command,
    "pick": pick_command,
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
                settings = check_config(cfg)
                if command != "search" and settings.search.force_new_study:
                    raise AqsvitError(f"search.force_new_study (--force-new-study): only aqsvit search starts a "
                                      f"study over; allowed for aqsvit {command}: false (it only reads)")
                COMMANDS[command](settings)
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
            raise AqsvitError(f"{unknown.group(1)}: not a config key; allowed: {', '.join(config_keys())} "
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
