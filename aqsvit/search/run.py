"""Plain-Python search API (the CLI calls it; so can a notebook): build, run, summarize."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from tqdm import tqdm

from aqsvit.errors import AqsvitError, check_choice, check_flag, check_int, check_number, check_text
from aqsvit.proxy import drift, get_reference
from aqsvit.proxy.drift import needs_layer_inputs
from aqsvit.registry import describe
from aqsvit.report.dashboard import CONTEXT_ATTR
from aqsvit.search._stepwise import STARTS, StepwiseSampler
from aqsvit.search.evaluator import Evaluator, Measurement
from aqsvit.search.objective import DIRECTIONS, METRIC_NAMES, QuantizationObjective
from aqsvit.search.pruners import pruner_options
from aqsvit.search.samplers import SamplerContext, is_stepwise, sampler_options
from aqsvit.search.space import GRANULARITIES, ORDERS, SearchSpace
from aqsvit.search.storages import DEFAULT_URL, create_storage, scheme_of
from aqsvit.search.study import heartbeat, quiet_experimental, recover_stale, wait_hook
from aqsvit.search.trials import IDLE_ATTR, is_feasible

log = logging.getLogger(__name__)
SEED_MAX = 2**32 - 1  # NumPy seeds (Optuna's samplers, the data split) stop there


@dataclass
class SearchSettings:
    """Everything that defines a search (the Hydra config maps onto this one to one)."""

    sampler: str = "greedy"                    # a name in aqsvit.search.samplers.SAMPLERS
    sampler_options: dict[str, Any] = field(default_factory=dict)  # its options (beam: width)
    granularity: str = "layer"
    order: str = "network"
    start: str = "precise"
    schemes: tuple[str, ...] = ("uniform", "pot")
    bits: tuple[int, ...] = (8, 6, 5, 4, 3, 2)
    delta: float = 1.0
    pruner: str = "drift"                      # a name in aqsvit.search.pruners.PRUNERS
    pruner_options: dict[str, Any] = field(default_factory=dict)  # its options (drift: definition, tau, calibrate)
    staged: bool = True
    screen: float = 0.3
    calib_images: int = 64
    calib_batch: int = 32
    n_trials: int | None = None
    seed: int = 0
    study_name: str = "aqsvit"
    storage_url: str = DEFAULT_URL
    workers: int = 1
    grace_period: float = 20.0
    force_new_study: bool = False

    @property
    def sampler_settings(self) -> Any:
        """The sampler's validated settings dataclass (aqsvit.search.samplers)."""
        return sampler_options(self.sampler, self.sampler_options)

    @property
    def pruner_settings(self) -> Any:
        """The pruner's validated settings dataclass (aqsvit.search.pruners)."""
        return pruner_options(self.pruner, self.pruner_options)

    @property
    def stepwise(self) -> bool:
        """Greedy and beam: they verify what they keep and re-propose failed candidates."""
        return is_stepwise(self.sampler)

    def validate(self) -> None:
        """Check every field before any expensive work; one line naming the field on error."""
        SearchSpace.from_units({"check": 1}, self.schemes, self.bits)
        sampler_options(self.sampler, self.sampler_options)  # each validates its own options
        pruner_options(self.pruner, self.pruner_options)
        for name, value, choices in (
                ("search.granularity", self.granularity, GRANULARITIES),
                ("search.order", self.order, ORDERS), ("search.start", self.start, STARTS)):
            check_choice(name, value, choices)
        check_number("delta", self.delta, 0)
        check_number("search.screen", self.screen, 0, 1, lo_open=True)
        for name, value in (("search.staged", self.staged), ("search.force_new_study", self.force_new_study)):
            check_flag(name, value)
        check_int("search.calib_images", self.calib_images, 1)
        check_int("search.calib_batch", self.calib_batch, 1)
        if self.n_trials is not None:
            check_int("search.n_trials", self.n_trials, 1)
        check_int("seed", self.seed, 0, SEED_MAX)
        check_text("search.study_name", self.study_name, r"[^\s/\\][^/\\]*",
                   "non-empty text without / or \\, not starting with a space")
        check_text("storage.url", self.storage_url)
        scheme_of(self.storage_url)
        check_int("workers", self.workers, 1)
        check_number("grace_period", self.grace_period, 0, lo_open=True)


@dataclass
class Search:
    study: optuna.Study
    objective: QuantizationObjective
    space: SearchSpace
    evaluator: Evaluator
    settings: SearchSettings
    setup_images: int = 0  # images this process spent before the trials (the screen's probe order)


def order_units(space: SearchSpace, order: str, evaluator: Evaluator, reference) -> SearchSpace:
    """Walk order: network order, largest unit first, or least sensitive first (drift of the unit
    alone at its cheapest candidate, one calibration forward per unit)."""
    if order == "network":
        return space
    if order == "size":
        return space.reordered([u.name for u in sorted(space.units, key=lambda u: -u.numel)])
    cheapest = space.candidates()[0] if space.candidates() else space.start
    base = space.uniform(space.start)
    scores = {}
    for unit in space.units:
        with evaluator.quantizer.applied(space.assignment({**base, unit.name: cheapest})) as model:
            scores[unit.name] = drift(model, reference).values["kl"]
    return space.reordered(sorted(scores, key=lambda n: (scores[n], n)))


FINGERPRINT_ATTR = "aqsvit:fingerprint"


def fingerprint(evaluator: Evaluator, settings: SearchSettings, space: SearchSpace, reference_key: str) -> dict:
    """What makes two runs' trials comparable: model, reference weights and data, space, delta, sampler."""
    spec = evaluator.model.spec
    return {
        "model": spec.describe(),
        "reference (checkpoint, data)": reference_key,
        "search space": f"{settings.granularity}/{settings.order}: {[u.name for u in space.units]} "
                        f"schemes {list(space.schemes)} bits {list(space.bits)}",
        "delta": settings.delta,
        "sampler": describe(settings.sampler, settings.sampler_settings)
                   + (f" from {settings.start}" if settings.stepwise and settings.start != "precise" else ""),
        "pruner": f"{describe(settings.pruner, settings.pruner_settings)} "
                  f"calib={settings.calib_images}/{settings.calib_batch} staged={settings.staged}"
                  f"{f' screen={settings.screen}' if settings.screen < 1 else ''}",
    }


def check_fingerprint(study: optuna.Study, current: dict) -> None:
    """Record the fingerprint on a new study; refuse to resume one recorded with other settings."""
    recorded = study.user_attrs.get(FINGERPRINT_ATTR)
    if recorded is None:
        study.set_user_attr(FINGERPRINT_ATTR, current)
        return
    differs = [k for k in current if recorded.get(k) != current[k]]
    if differs:
        k = differs[0]
        raise AqsvitError(f"study {study.study_name!r} was created with {k} = {recorded.get(k)!r}, now {current[k]!r}"
                          f"{f' (and {len(differs) - 1} more)' if len(differs) > 1 else ''}; resume with the same "
                          "settings, choose a new search.study_name, or pass --force-new-study")


def build_sampler(settings: SearchSettings, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The registered sampler ``settings.sampler`` over ``space``."""
    context = SamplerContext(space, settings.seed, settings.start, wait_hook(settings.grace_period))
    return settings.sampler_settings.build(context)


def prepare(evaluator: Evaluator, settings: SearchSettings, reference_key: str,
            cache_dir: str | None = None, storage: BaseStorage | None = None) -> Search:
    """Space, FP reference, sampler, pruner and the (created or resumed) study (on ``storage``,
    else one opened from ``settings.storage_url``)."""
    settings.validate()
    pruning = settings.pruner_settings
    definition = getattr(pruning, "definition", "logit")  # the drift every trial records
    layer_inputs = (tuple(sorted({layer.module_name for layer in evaluator.layers}))
                    if needs_layer_inputs(definition) else ())
    reference = get_reference(evaluator.model, evaluator.data.calib, reference_key,
                              images=settings.calib_images, batch_size=settings.calib_batch,
                              layer_inputs=layer_inputs, cache_dir=cache_dir)
    space = SearchSpace.from_layers(evaluator.layers, settings.schemes, settings.bits, settings.granularity)
    space = order_units(space, settings.order, evaluator, reference)
    pruner = pruning.build(settings.delta)
    if storage is None:
        storage = create_storage(settings.storage_url, settings.workers, settings.grace_period,
                                 retry_failed=not settings.stepwise)
    if settings.force_new_study:
        try:
            optuna.delete_study(study_name=settings.study_name, storage=storage)
        except KeyError:
            pass
    study = optuna.create_study(storage=storage, study_name=settings.study_name, directions=list(DIRECTIONS),
                                sampler=build_sampler(settings, space), load_if_exists=True)
    check_fingerprint(study, fingerprint(evaluator, settings, space, reference_key))
    with quiet_experimental():
        study.set_metric_names(list(METRIC_NAMES))
    study.set_user_attr(CONTEXT_ATTR, {
        "model": evaluator.model.spec.name, "dataset": evaluator.data.name, "fp_accuracy": round(evaluator.fp_accuracy, 3),
        "delta": settings.delta, "tau": _tau_label(pruning),
        "sampler": settings.sampler, "granularity": settings.granularity, "layers": len(evaluator.layers)})
    # a screen decides candidates on part of the split: only the stepwise samplers verify the result
    screen = settings.screen if settings.stepwise else 1.0
    screened = screen < 1 and settings.staged
    probes = [space.assignment(space.uniform(choice)) for choice in space.candidates()]
    probe, setup_images = evaluator.order_by_probe(probes if screened else [], settings.delta)
    if screened:
        log.info("screen order: FP difficulty and %s (%d images)", "no probe within delta" if probe is None else
                 "probe {} {}-bit everywhere".format(*space.candidates()[probe]), setup_images)
    objective = QuantizationObjective(evaluator, space, reference, settings.delta, pruner, settings.staged,
                                      definition, screen)
    return Search(study, objective, space, evaluator, settings, setup_images)


def _tau_label(pruning: Any) -> float | str:
    """The drift threshold a pruner's settings use, for the dashboard's context."""
    tau = getattr(pruning, "tau", None)
    return tau if tau is not None else ("online" if getattr(pruning, "calibrate", False) else "none")


def run(search: Search, progress: bool = True) -> None:
    """Run this worker until the sampler ends the study (or ``n_trials`` for Optuna's samplers)."""
    study, settings = search.study, search.settings
    stepwise = isinstance(study.sampler, StepwiseSampler)
    if stepwise and study.sampler.result(study) is not None:
        return
    n_trials = settings.n_trials if settings.n_trials is not None else (None if stepwise else 200)
    bar = tqdm(total=n_trials, desc=f"{settings.sampler} search", unit="trial", disable=None if progress else True,
               mininterval=0.5)

    def objective(trial: optuna.Trial):
        with heartbeat(study, trial._trial_id, interval=settings.grace_period / 4):
            return search.objective(trial)

    seen = {"pruned": 0, "best": None}

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Progress from the finished trial alone (no storage read: it would cost every trial)."""
        if trial.system_attrs.get(IDLE_ATTR):
            return
        bar.update()
        seen["pruned"] += trial.state == TrialState.PRUNED
        if best_feasible([trial]) is not None and (seen["best"] is None or trial.values[1] < seen["best"]):
            seen["best"] = trial.values[1]
        bar.set_postfix(pruned=seen["pruned"], best_kib=f"{seen['best'] / 1024:.1f}" if seen["best"] else "-")

    try:
        study.optimize(objective, n_trials=n_trials, callbacks=[on_trial], gc_after_trial=False)
    finally:
        bar.close()
    if stepwise:
        drain(study, settings.grace_period)


def drain(study: optuna.Study, grace_period: float) -> None:
    """After the end: wait until no trial is RUNNING, failing those of dead workers, so that a
    finished study holds only finished trials (live workers' last trials end within seconds)."""
    import time

    deadline = time.monotonic() + 3 * grace_period + 10
    while time.monotonic() < deadline:
        recover_stale(study, grace_period)
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            return
        time.sleep(min(1.0, grace_period / 4))


def best_feasible(trials) -> optuna.trial.FrozenTrial | None:
    """The least-memory COMPLETE trial whose constraints hold (ties: higher accuracy)."""
    feasible = [t for t in trials if is_feasible(t)]
    return min(feasible, key=lambda t: (t.values[1], -t.values[0]), default=None)


@dataclass
class SearchSummary:
    """The chosen assignment and how the search got there."""

    choices: dict[str, tuple[str, int]] | None
    measurement: Measurement | None
    trials: int
    pruned: int
    screened: int  # decided on the screen of the evaluation split (accepted there)
    full_evaluations: int
    images: int
    wall_seconds: float


def summarize(search: Search) -> SearchSummary:
    """Final assignment (the sampler's result, else the best feasible trial) and the search cost."""
    study, space = search.study, search.space
    trials = [t for t in study.get_trials(deepcopy=False) if not t.system_attrs.get(IDLE_ATTR)]
    best = best_feasible(trials)
    choices = study.sampler.result(study) if isinstance(study.sampler, StepwiseSampler) else None
    if choices is None and best is not None:
        choices = space.choices_from_params(best.params)
    measurement = None
    if choices is not None:
        key = space.key(choices)
        measured = next((t for t in trials if t.state == TrialState.COMPLETE and not t.user_attrs.get("screened")
                         and space.key(space.choices_from_params(t.params)) == key), None)
        cost = search.evaluator.cost(space.assignment(choices))
        if measured is not None:
            acc = measured.values[0]
            measurement = replace(cost, accuracy=acc, drop=search.evaluator.fp_accuracy - acc)
        else:
            measurement = search.evaluator.measure(space.assignment(choices))
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return SearchSummary(
        choices, measurement, len(finished),
        sum(t.state == TrialState.PRUNED for t in finished),
        sum(t.state == TrialState.COMPLETE and bool(t.user_attrs.get("screened")) for t in finished),
        sum(t.state == TrialState.COMPLETE and not t.user_attrs.get("screened") for t in finished),
        sum(int(t.user_attrs.get("images", 0)) for t in finished), wall)
