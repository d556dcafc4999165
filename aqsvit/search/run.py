"""Plain-Python search API (the CLI calls it; so can a notebook): build, run, summarize."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from aqsvit.errors import AqsvitError
from aqsvit.proxy import drift, get_reference
from aqsvit.proxy.drift import needs_layer_inputs
from aqsvit.proxy.staged import StagedResult
from aqsvit.search.stepwise import StepwiseSampler
from aqsvit.search.evaluator import Evaluator, Measurement
from aqsvit.search.objective import DIRECTIONS, METRIC_NAMES, QuantizationObjective, WalkMeasure
from aqsvit.search.front import FRONT_KEY, measured, pick
from aqsvit.search.fingerprint import check_fingerprint, compare_fingerprint, fingerprint
from aqsvit.search.pruners import make_pruner
from aqsvit.search.samplers import SamplerContext, make_sampler
from aqsvit.search.settings import SearchSettings
from aqsvit.search.space import SearchSpace
from aqsvit.search.storages import create_storage
from aqsvit.search.study import interrupts_deferred, optimize, quiet_experimental, recover_stale, wait_hook
from aqsvit.search.trials import is_feasible
from aqsvit.search.vocabulary import (CONTEXT_ATTR, FINGERPRINT_ATTR, IDLE_ATTR, IMAGES_ATTR, MACS_ATTR, PROBED,
                                      PRUNED_BY_ATTR, SCREENED_ATTR)

log = logging.getLogger(__name__)


@dataclass
class Search:
    study: optuna.Study
    objective: QuantizationObjective
    space: SearchSpace
    evaluator: Evaluator
    settings: SearchSettings
    setup_images: int = 0  # images this process spent before the trials (the screen's probe order), beyond
    # those of the measurements it added to the study as trials (record_measured)


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


def build_sampler(settings: SearchSettings, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The registered sampler ``settings.sampler`` over ``space``."""
    context = SamplerContext(space, settings.seed, settings.start, wait_hook(settings.grace_period),
                             settings.deltas if settings.front else ())
    return make_sampler(settings.sampler, settings.sampler_settings, context)


def prepare(evaluator: Evaluator, settings: SearchSettings, reference_key: str,
            cache_dir: str | None = None, storage: BaseStorage | None = None, read_only: bool = False) -> Search:
    """Space, FP reference, sampler, pruner and the (created or resumed) study (on ``storage``,
    else one opened from ``settings.storage_url``). ``read_only``: the study must exist and was
    made with these settings; nothing is written to it (report, finetune)."""
    check_delta(settings.loosest_delta, evaluator)
    evaluator.stages.clear()  # each search starts cold, so its cost is its own (several searches share an evaluator)
    pruning = settings.pruner_settings
    definition = getattr(pruning, "definition", "logit")  # the drift every trial records
    layer_inputs = (tuple(sorted({layer.module_name for layer in evaluator.layers}))
                    if needs_layer_inputs(definition) else ())
    reference = get_reference(evaluator.model, evaluator.data.calib, reference_key,
                              images=settings.calib_images, batch_size=settings.calib_batch,
                              layer_inputs=layer_inputs, cache_dir=cache_dir)
    layers = {layer.name: layer for layer in evaluator.layers}
    if evaluator.target.name != settings.target:
        raise AqsvitError(f"target: the evaluator quantizes for {evaluator.target.name}, the settings name "
                          f"{settings.target}")
    space = SearchSpace.from_layers(evaluator.layers, settings.schemes, settings.bits, settings.granularity,
                                    evaluator.target)
    space = space.with_weight_noise(lambda name: evaluator.quantizer.fp_weight(layers[name]))
    space = order_units(space, settings.order, evaluator, reference)
    measured_at = settings.loosest_delta  # a front: each walk's trials are marked with their own delta
    pruner = make_pruner(settings.pruner, pruning, measured_at)
    if storage is None:
        storage = create_storage(settings.storage_url, settings.workers, settings.grace_period,
                                 retry_failed=not settings.stepwise)
    current = fingerprint(evaluator, settings, space, reference_key)
    if read_only:
        study = optuna.load_study(storage=storage, study_name=settings.study_name, sampler=build_sampler(settings, space))
        compare_fingerprint(study.study_name, study.user_attrs.get(FINGERPRINT_ATTR), current)
    else:
        study = open_study(storage, settings, build_sampler(settings, space), current, {
            "model": evaluator.model.spec.name, "dataset": evaluator.data.name,
            "fp_accuracy": round(evaluator.fp_accuracy, 3), "delta": settings.delta, "tau": _tau_label(pruning),
            **({FRONT_KEY: list(settings.front)} if settings.front else {}),
            "sampler": settings.sampler, "granularity": settings.granularity, "layers": len(evaluator.layers),
            "target": evaluator.target.describe()})
    # a screen decides candidates on part of the split: only the stepwise samplers verify the result
    screen = settings.screen if settings.stepwise else 1.0
    screened = screen < 1 and settings.staged and not read_only
    widths = [space.uniform(choice) for choice in space.candidates()]
    objective = QuantizationObjective(evaluator, space, reference, measured_at, pruner, settings.staged,
                                      definition, screen)
    setup_images = 0
    for delta in settings.deltas:  # a front's walks each as the search for its delta alone
        # the screen holds the errors of candidates near the delta
        order = evaluator.order_by_probe([space.assignment(w) for w in widths] if screened else [], delta)
        if screened:
            log.info("screen order at delta %g: FP difficulty and %s (%d images)", delta,
                     "no probe within delta" if order.probe is None else
                     "probe {} {}-bit everywhere".format(*space.candidates()[order.probe]), order.images)
        if settings.front:
            objective.front[delta] = WalkMeasure(make_pruner(settings.pruner, pruning, delta), evaluator.test)
        setup_images += order.images - record_measured(study, objective, widths, order.measured, delta,
                                                        delta if settings.front else None)
    return Search(study, objective, space, evaluator, settings, setup_images)


def check_delta(delta: float, evaluator: Evaluator) -> None:
    """Refuse a ``delta`` that reaches down to chance: every assignment, even one that only guesses,
    would be within it, and the "chosen" model would be meaningless. A reference not above chance
    (a one-class split, as the benchmarks' synthetic ones) is the caller's to judge (the CLI refuses it)."""
    chance = evaluator.data.chance
    if chance < evaluator.fp_accuracy and evaluator.fp_accuracy - delta <= chance:
        raise AqsvitError(f"delta: got {delta}; allowed: numbers below {evaluator.fp_accuracy - chance:.2f} (the FP "
                          f"accuracy {evaluator.fp_accuracy:.2f}% minus the {chance:.2f}% of always answering the most "
                          "frequent test label): a larger delta accepts a model that guesses")


def open_study(storage: BaseStorage, settings: SearchSettings, sampler: optuna.samplers.BaseSampler,
               recorded: dict, context: dict) -> optuna.Study:
    """The study ``settings.study_name`` on ``storage``, created or resumed, with its fingerprint
    ``recorded`` (checked on a resume), its metric names and the dashboard's ``context``.

    Workers started together run this at the same moment; every step tolerates that: a study
    created by another worker meanwhile is loaded, and attributes written twice hold one value. A
    front study resumed with more deltas walks those too and records every delta it answers
    (:func:`~aqsvit.search.fingerprint.check_fingerprint`, ``context``'s front)."""
    if settings.force_new_study:
        try:
            optuna.delete_study(study_name=settings.study_name, storage=storage)
        except KeyError:
            pass
    study = optuna.create_study(storage=storage, study_name=settings.study_name, directions=list(DIRECTIONS),
                                sampler=sampler, load_if_exists=True)
    check_fingerprint(study, recorded)
    with quiet_experimental():
        study.set_metric_names(list(METRIC_NAMES))
    walked = study.user_attrs.get(CONTEXT_ATTR, {}).get(FRONT_KEY)
    if walked and FRONT_KEY in context:  # a front resumed with other deltas answers every one it walked
        context = {**context, FRONT_KEY: sorted({*map(float, walked), *context[FRONT_KEY]})}
    study.set_user_attr(CONTEXT_ATTR, context)
    return study


def record_measured(study: optuna.Study, objective: QuantizationObjective, choices: Sequence[dict],
                    measured: Sequence[StagedResult], delta: float, walk: float | None = None) -> int:
    """Add the one-width assignments the screen's setup measured (exact outcomes: stopped, or the
    whole split) to a stepwise study as the trials the objective would have recorded, so that its
    one-width step reads them instead of measuring them again; returns the images those trials
    hold (their MACs are theirs now, no longer the setup's). ``delta``: what they were measured
    against; ``walk``: the front's walk they are for (None: no front). An assignment some trial
    already holds (a resumed study, another worker) is left alone."""
    if not isinstance(study.sampler, StepwiseSampler):
        return 0
    full_macs, images = objective.evaluator.stages.full_macs, 0
    for assignment, result in zip(choices, measured):
        trial = objective.measured_trial(assignment, result, result.images * full_macs, "screen order", delta)
        with interrupts_deferred():  # a Ctrl-C waits until the trial is written whole, never left RUNNING
            if study.sampler.add_measured(study, trial, walk):
                images += result.images
    return images


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
        optimize(study, search.objective, n_trials, [on_trial], settings.grace_period / 4)
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


def least_verified(trials: Sequence[FrozenTrial], space: SearchSpace, choices: dict[str, tuple[str, int]],
                   delta: float) -> dict[str, tuple[str, int]]:
    """``choices``, or the trial measured on the whole split within ``delta`` that stores least (ties:
    more accurate; :func:`aqsvit.search.front.pick`) when it beats them: a walk sent down another path
    by a failed verification can leave such a trial behind, and the result must be a point of the
    verified front."""
    def rank(t: FrozenTrial) -> tuple[float, float]:
        return t.values[1], -t.values[0]
    chosen_key = space.key(choices)
    chosen = next((t for t in measured(trials) if space.key(space.choices_from_params(t.params)) == chosen_key
                   and is_feasible(t)), None)
    best = pick(trials, delta)
    if chosen is None or best is None or rank(chosen) <= rank(best):
        return choices  # a result not measured on the whole split is left to the sampler's word
    return space.choices_from_params(best.params)


def walk_result(study: optuna.Study, delta: float) -> dict[str, tuple[str, int]] | None:
    """A finished stepwise walk's result at ``delta`` (a front's: that delta's), else None."""
    sampler = study.sampler
    if not isinstance(sampler, StepwiseSampler) or sampler.result(study) is None:
        return None
    return sampler.front_results(study).get(delta) if sampler.front else sampler.result(study)


@dataclass
class SearchSummary:
    """The chosen assignment and how the search got there."""

    choices: dict[str, tuple[str, int]] | None
    measurement: Measurement | None
    trials: int
    pruned: int  # stopped early by a gate (probes not counted)
    screened: int  # decided on the screen of the evaluation split (accepted there)
    full_evaluations: int
    images: int
    wall_seconds: float
    cost: float = 0.0  # multiply-accumulates of its trials and its setup, in FP forwards over the whole split
    probes: int = 0  # the sensitivity start's probes: one calibration batch each, stopped by design


def summarize(search: Search) -> SearchSummary:
    """Final assignment (the sampler's result at ``delta``, else the best trial within it) and the search cost."""
    study, space, delta = search.study, search.space, search.settings.delta
    trials = [t for t in study.get_trials(deepcopy=False) if not t.system_attrs.get(IDLE_ATTR)]
    choices = walk_result(study, delta)
    if choices is None:
        best = pick(trials, delta) if search.settings.front else best_feasible(trials)
        choices = None if best is None else space.choices_from_params(best.params)
    else:
        choices = least_verified(trials, space, choices, delta)
    measurement = None
    if choices is not None:
        key = space.key(choices)
        whole = next((t for t in measured(trials) if space.key(space.choices_from_params(t.params)) == key), None)
        cost = search.evaluator.cost(space.assignment(choices))
        if whole is not None:
            acc = whole.values[0]
            measurement = replace(cost, accuracy=acc, drop=search.evaluator.fp_accuracy - acc)
        else:
            measurement = search.evaluator.measure(space.assignment(choices))
        if measurement.drop > delta:  # the walk ended where it started, and even that is not
            choices, measurement = None, None        # within delta: there is no result
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    probes = sum(t.user_attrs.get(PRUNED_BY_ATTR) == PROBED for t in finished)
    return SearchSummary(
        choices, measurement, len(finished),
        sum(t.state == TrialState.PRUNED for t in finished) - probes,
        sum(t.state == TrialState.COMPLETE and bool(t.user_attrs.get(SCREENED_ATTR)) for t in finished),
        sum(t.state == TrialState.COMPLETE and not t.user_attrs.get(SCREENED_ATTR) for t in finished),
        sum(int(t.user_attrs.get(IMAGES_ATTR, 0)) for t in finished), wall,
        search_cost(search, finished), probes)


def search_cost(search: Search, trials: Sequence[FrozenTrial]) -> float:
    """What ``trials`` and this process's setup cost, in full evaluations: their multiply-
    accumulates (user attr ``macs``) / those of one FP forward over the whole evaluation split."""
    ev = search.evaluator
    macs = sum(float(t.user_attrs.get(MACS_ATTR, 0.0)) for t in trials) + search.setup_images * ev.stages.full_macs
    return macs / ev.full_evaluation_macs if ev.full_evaluation_macs else 0.0
