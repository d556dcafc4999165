"""Shared machinery of the stepwise samplers: state from storage, safe claims, waiting, stopping.

A stepwise sampler derives everything from the trials in storage: which assignments were
evaluated (by key, a trial system attr), which were feasible (COMPLETE with all constraints <= 0),
and which are being evaluated now. Its subclass turns that into a *plan*: the assignments worth
evaluating next, in order, or the final result.

Claims: when a trial asks for its first parameter of the space (``sample_independent``), the worker
writes the key it intends to evaluate onto its own trial, then re-reads the study; if any other
live trial holds the same key it withdraws and tries the next proposal (an enqueued trial that
fixes the whole space claims its assignment in ``before_trial`` instead). A trial that asks for no
parameter of the space claims nothing: everything outside the space goes to the independent
sampler, as with Optuna's own relative samplers. Two workers racing for one key both write before they read, so at least one of
them sees the other: never both evaluate it (at worst both withdraw and move on). FAIL trials
hold no claim, so a killed worker's candidate is proposed again. A claim fails too when another
worker fails the claiming trial meanwhile (it took a stalled worker for dead); the worker goes on
with its next trial (:func:`aqsvit.search.study.optimize`).

Screened outcomes: an objective may decide a candidate on a screen of the evaluation split (the
hardest images first) instead of the whole split: a COMPLETE trial with the user attrs
``screened`` (true), ``errors`` (wrong answers on the screen) and ``budget`` (most wrong answers
the whole split may have). The sampler judges it against a *reserve*, the most errors any verified
assignment made outside its screen (0 until a verification shows more):

- ``errors <= budget - reserve``: accepted on the screen (an inexact outcome);
- otherwise: undecided, so the sampler proposes a *verification* (system attr ``aqsvit:verify``,
  claimed as the key prefixed with ``verify:``) and the objective measures the whole split.

A plan's result must be exact too, so a screened result is verified before the search ends. A
verification that fails raises the reserve by at least one error, so at most ``budget + 1``
verifications fail; the re-judged walk repairs itself and the final assignment is always measured
on the whole split.

Probes (the sensitivity start): claimed as the key prefixed with ``probe:`` and marked with the
system attr ``aqsvit:probe``, so the objective measures only their sensitivity; they decide nothing
about feasibility, only the ``sensitivity`` (or ``drift``) user attr is read, whatever their state.

A candidate a sampler pruned as ``outranked`` (user attr ``pruned_by``; see
:meth:`BeamSampler.outranked`) counts as infeasible while no verification has failed; once one
has, the screened outcomes that outranked it may be revised, so it becomes undecided too and
is then decided by its own whole-split measurement.

A front (``front``: several deltas, ascending): one study answers each of them. The sampler
walks for each delta exactly as a search for that delta alone walks: from its own start, reading
only its own claims (``at <delta>:<key>``, system attr ``aqsvit:delta`` for the objective, which
measures them as that search would) and the probes, which every delta's start shares (a probe's
sensitivity does not depend on the delta). So each delta's result is the one a search for it
alone finds, and the study holds every point of every walk, for :func:`aqsvit.search.front.pick`
to choose from afterwards. The walks are independent, so a worker takes the next proposal of the
tightest walk still open, and a worker that walk cannot keep busy (its proposals all held) takes
the next walk's: one worker walks the deltas in turn, many walk several at once. (A walk that
went on from the tighter delta's result instead, sharing screens and stops between deltas, cost
about a quarter less, but ended larger than the search for the delta alone on some models: a
greedy walk's end depends on where it starts.) :meth:`StepwiseSampler.front_results` gives each
delta's result, :meth:`StepwiseSampler.result` the loosest's once all are known.
"""
from __future__ import annotations

import random
import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from aqsvit.errors import check_number, invalid
from aqsvit.search.space import Choice, SearchSpace
from aqsvit.search.stepwise.ledger import Ledger
from aqsvit.search.stepwise.outcome import Outcome, Plan, at_key, judge, walk_key
from aqsvit.search.stepwise.starts import WalkStart, walk_start
from aqsvit.search.trial_reads import study_trials
from aqsvit.search.trial_writes import set_trial_params
from aqsvit.search.vocabulary import (AT_PREFIX, DELTA_ATTR, FIXED_PARAMS_ATTR, IDLE_ATTR, KEY_ATTR, PROBE_ATTR,
                                      PROBE_PREFIX, VERIFY_ATTR, VERIFY_PREFIX)

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study


def trial_key(trial: FrozenTrial, space: SearchSpace) -> str | None:
    """The assignment key a trial evaluates: its claim, or its fixed (enqueued) params."""
    if KEY_ATTR in trial.system_attrs:
        return trial.system_attrs[KEY_ATTR]
    fixed = trial.system_attrs.get(FIXED_PARAMS_ATTR)
    if fixed and all(name in fixed for name in space.distributions()):
        return space.key(space.choices_from_params(fixed))
    return None


@dataclass
class Walk:
    """Where one walk of a study stands (a front's: one per delta): its plan, the outcomes it was
    judged by, the keys left undecided there and its claims (keys as that walk reads them)."""

    plan: Plan
    outcomes: dict[str, Outcome]
    undecided: set[str]
    claims: Any
    delta: float | None = None  # the front's delta it walks (None: no front)

    def claim_key(self, choices_key: str, probes: bool) -> str:
        """What a worker claims to evaluate ``choices_key`` next, as the walk reads it: a probe, a
        verification of a screened outcome, or the assignment itself."""
        if probes:
            return PROBE_PREFIX + choices_key
        outcome = self.outcomes.get(choices_key)
        if choices_key in self.undecided or (outcome is not None and not outcome.exact):
            return VERIFY_PREFIX + choices_key  # screened already: measure the whole split
        return choices_key


def check_front(front: Sequence[float]) -> tuple[float, ...]:
    """``front`` as ascending distinct deltas (points), or one line naming ``search.front``."""
    if isinstance(front, (str, bytes)) or not isinstance(front, Sequence):
        raise invalid("search.front", front, "a list of accuracy drops in points, e.g. [0.5, 1, 2, 3]")
    return tuple(sorted({check_number("search.front", delta, 0, 100, allowed="numbers 0..100 (accuracy points)")
                         for delta in front}))


class StepwiseSampler(BaseSampler):
    """Base class of the stepwise samplers: subclasses implement :meth:`plan` from the evaluated
    outcomes, walking from :meth:`start_assignment`.

    ``start`` is where the walk begins: a :class:`~aqsvit.search.stepwise.starts.WalkStart`
    (:class:`PreciseStart`, :class:`OneWidthStart`, :class:`SensitivityStart`, :class:`AutoStart`)
    or its ``search.start`` name (``precise``, ``one_width``, ``sensitivity``, ``auto``); the
    sampler resolves it for its space once (``auto`` picks by the number of probes). Every unit
    then only moves below its start choice. ``one_width`` has a feasible result after a few trials
    and walks few candidates per unit; ``sensitivity`` has the same early result, then spends
    ``1 + units x schemes`` probes (a calibration batch each, all independent) to start much
    lower (see :mod:`aqsvit.search.stepwise.starts`).

    ``front``: the deltas one study answers, each walked as a search for it alone, several at
    once when workers are idle otherwise (empty: the objective's own constraint decides, one
    result). The objective measures a trial as the search for the delta in its ``aqsvit:delta``
    system attr would, and records what :func:`judge` reads (see the module docstring;
    :class:`~aqsvit.search.objective.QuantizationObjective` does).

    A sampler that ranks candidates by drift overrides :meth:`outranked` (BeamSampler); the
    :class:`~aqsvit.search.DriftPruner`'s tie gate asks it.
    """

    def __init__(self, space: SearchSpace, poll_interval: float = 0.2, seed: int | None = None,
                 on_wait: Any = None, start: WalkStart | str = "precise",
                 independent_sampler: BaseSampler | None = None, front: Sequence[float] = ()) -> None:
        self.space = space
        self.start: WalkStart = walk_start(start).resolve(space)
        self.front = check_front(front)
        self.poll_interval = poll_interval
        self.on_wait = on_wait  # callable(study, trial_id): keep this trial alive, fail dead ones
        self._rng = random.Random(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._distributions = space.distributions()
        # each running trial's claimed parameters (None: the search had ended), by trial id, so
        # sample_independent (once per parameter) needs no storage read
        self._claimed: dict[int, dict[str, Any] | None] = {}
        # what each study's trials say to each walk (a front: one per delta), read incrementally
        self._ledgers: dict[tuple[int, float | None], Ledger] = {}
        self._walking: float | None = None  # the delta :meth:`plan` walks for now (a front's; else None)

    # --- to implement ----------------------------------------------------------------------------
    @abstractmethod
    def plan(self, outcomes: dict[str, Outcome]) -> Plan:
        """The assignments worth evaluating next (in preference order), or the final result, from
        the outcomes known so far (by :meth:`SearchSpace.key`; probes under their prefix), walking
        from :meth:`start_assignment`."""

    def start_assignment(self, outcomes: dict[str, Outcome]) -> dict[str, Choice] | Plan:
        """Where the walk starts, or the plan of what to evaluate before that is known."""
        return self.start.assignment(self.space, outcomes)

    def outranked(self, choices: dict[str, Choice], drift: float, delta: float | None = None) -> bool:
        """Whether a candidate with this ``drift`` can no longer enter the result of its walk (a
        front's walk for ``delta``): it loses every tie it could take. False here: only a sampler
        that ranks by drift can say more."""
        return False

    # --- state from storage ----------------------------------------------------------------------
    def _key(self, trial: FrozenTrial) -> str | None:
        return trial_key(trial, self.space)

    def _ledger(self, study_id: int, delta: float | None = None) -> Ledger:
        """What the study's trials say to the walk for ``delta`` (None: no front), each finished
        trial read once (:mod:`~aqsvit.search.stepwise.ledger`): on a front, its own claims and the probes."""
        if (study_id, delta) not in self._ledgers:
            def key_of(trial: FrozenTrial) -> str | None:
                claim = self._key(trial)
                return claim if delta is None or claim is None else walk_key(delta, claim)
            self._ledgers[study_id, delta] = Ledger(key_of)
        return self._ledgers[study_id, delta]

    def _walks(self, trials: Sequence[FrozenTrial], study_id: int) -> Iterator[Walk]:
        """Where the walks of study ``study_id`` stand (a front's: one per delta, ascending; else
        one), from all its ``trials``, each read through its own ledger; lazily, so a caller that
        needs only the tightest open walk plans no other."""
        for delta in self.front or (None,):
            readings = self._ledger(study_id, delta).read(trials)
            outcomes, undecided = judge(readings)
            self._walking = delta
            yield Walk(self._final_plan(outcomes), outcomes, undecided, readings.claims, delta)

    def _final_plan(self, outcomes: dict[str, Outcome]) -> Plan:
        """:meth:`plan`, with a result that was only screened proposed for its verification."""
        plan = self.plan(outcomes)
        if plan.result is not None:
            outcome = outcomes.get(self.space.key(plan.result))
            if outcome is None or not outcome.exact:
                return Plan(proposals=[plan.result])
        return plan

    def result(self, study: Study) -> dict[str, Choice] | None:
        """The final assignment once the search has finished (a front's: its loosest delta's, once
        every delta's is known), else None."""
        walks = list(self._walks(study_trials(study._storage, study._study_id), study._study_id))
        return walks[-1].plan.result if all(w.plan.result is not None for w in walks) else None

    def front_results(self, study: Study) -> dict[float, dict[str, Choice]]:
        """Each delta's result known so far (a front's deltas, ascending; empty without a front)."""
        walks = self._walks(study_trials(study._storage, study._study_id), study._study_id)
        return {w.delta: w.plan.result for w in walks if w.delta is not None and w.plan.result is not None}

    # --- Optuna hooks ----------------------------------------------------------------------------
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        """A parameter of the space comes from the trial's claimed assignment (claimed now, at its
        first one); any other name, or a space name asked with another distribution, from the
        independent sampler."""
        if self._distributions.get(param_name) != param_distribution:
            return self._independent_sampler.sample_independent(study, trial, param_name, param_distribution)
        if trial._trial_id not in self._claimed:
            self._claim_next(study, trial._trial_id, trial.number)
            self._write_claimed(study, trial)
        params = self._claimed[trial._trial_id]
        if params is None:
            raise optuna.TrialPruned("the search has finished; no candidate left for this trial")
        return params[param_name]

    def _write_claimed(self, study: Study, trial: FrozenTrial) -> None:
        """Write the claimed assignment's parameters in one storage write, and put them on
        ``trial``, the frozen trial Optuna's suggests read: the space's other suggests then write
        nothing (:mod:`aqsvit.search.trial_writes`). The one being asked is written too: Optuna
        writes it again after this, which aqsvit's RDB storage finds already held and skips (and
        other storages take as a repeat of the same value)."""
        params = self._claimed[trial._trial_id]
        if params is None:
            return
        rest = {name: (self._distributions[name].to_internal_repr(value), self._distributions[name])
                for name, value in params.items() if name not in trial.distributions}
        if not rest:
            return
        set_trial_params(study._storage, trial._trial_id, rest)
        for name, (_, distribution) in rest.items():
            trial.distributions[name] = distribution
            trial.params[name] = params[name]

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)
        fixed = trial.system_attrs.get(FIXED_PARAMS_ATTR)
        if not fixed:
            return
        key, delta = trial_key(trial, self.space), None
        if key is not None and self.front:  # claimed for the tightest delta still walked (else the loosest)
            for walk in self._walks(study_trials(study._storage, study._study_id), study._study_id):
                if walk.plan.result is None:
                    break  # the walks are planned lazily: none after the tightest open one
            delta = walk.delta
            if key.startswith(AT_PREFIX):  # a claim carried over: kept only by the walk it names
                key = walk_key(delta, key)
        if key is None or self._claim(study, trial._trial_id, trial.number, key,
                                      self.space.choices_from_params(fixed), delta):
            return
        # a retried or enqueued trial whose assignment another worker already holds: turn it into
        # a fresh proposal (claimed at its first parameter) instead of evaluating that assignment
        # twice. Optuna reads the fixed params from this very object after before_trial, so clear
        # them here as well as in storage.
        try:
            study._storage.set_trial_system_attr(trial._trial_id, FIXED_PARAMS_ATTR, {})
        except UpdateFinishedTrialError:  # another worker failed it meanwhile: its objective's first write ends it
            return
        trial.system_attrs.pop(FIXED_PARAMS_ATTR, None)

    def _claim_next(self, study: Study, trial_id: int, number: int) -> None:
        """Claim the first proposal of the plan nobody holds, waiting while other workers hold them
        all; once the search has ended, mark this trial idle and stop the study instead. A trial
        another worker finished meanwhile (it took this one for dead) claims nothing: it raises
        UpdateFinishedTrialError, as a write on it would."""
        storage = study._storage
        while True:
            trials = study_trials(storage, study._study_id)
            if trials[number].state.is_finished():
                raise UpdateFinishedTrialError(f"trial {number} was finished by another worker while it waited "
                                               "for a candidate")
            walks = (w for w in self._walks(trials, study._study_id) if w.plan.result is None)
            tightest = next(walks, None)
            if tightest is None:
                storage.set_trial_system_attr(trial_id, IDLE_ATTR, True)
                self._claimed[trial_id] = None
                self._stop(study)
                return
            lost_race = False  # a claim lost to a trial newer than ``trials``: that snapshot is stale
            live = self._ledger(study._study_id, tightest.delta).live
            for choices, key, walk in self._spread(chain([tightest], walks), number, len(live)):
                if self._claim(study, trial_id, number, key, choices, walk.delta):
                    return
                lost_race = True
            if not lost_race and all(trials[n]._trial_id == trial_id for n in live):
                # nobody else is evaluating anything, so nothing can change what this worker sees
                raise RuntimeError(f"{type(self).__name__}: every proposal is held by a finished trial that "
                                   "decided nothing (a sampler bug; please report it with the study)")
            if self.on_wait is not None:
                self.on_wait(study, trial_id)
            time.sleep(self.poll_interval * (0.5 + self._rng.random()))

    def _spread(self, walks: Iterable[Walk], number: int, live: int) -> list[tuple[dict[str, Choice], str, Walk]]:
        """The unclaimed proposals of the open ``walks`` (tightest first; with their claim keys and
        walks) in the order trial ``number`` tries them: each walk's first, then each one's second,
        and so on (a front's walks are independent, so a worker walks the next delta rather than
        evaluate a walk's later proposals speculatively; a probe, which every delta's walk proposes,
        once), read from as many walks as it takes for ``live`` (the live trials) of them to propose
        something; then the one at ``number`` modulo ``live`` among the first as many goes first.
        Workers that read the study together would otherwise all race for the first one, and every
        lost race costs a write and a read; one worker alone keeps the tightest walk's order and
        plans no other walk."""
        options: list[list[tuple[dict[str, Choice], str, Walk]]] = []
        for walk in walks:
            options.append([(choices, key, walk) for choices in walk.plan.proposals
                            if (key := walk.claim_key(self.space.key(choices), walk.plan.probes)) not in walk.claims])
            if sum(map(bool, options)) >= live:
                break
        unclaimed, seen = [], set()
        for rank in range(max(map(len, options), default=0)):
            for choices, key, walk in (o[rank] for o in options if rank < len(o)):
                claim = key if walk.delta is None else at_key(walk.delta, key)
                if claim not in seen:
                    seen.add(claim)
                    unclaimed.append((choices, key, walk))
        spread = min(len(unclaimed), live)
        first = number % spread if spread > 1 else 0
        return [unclaimed[first], *unclaimed[:first], *unclaimed[first + 1:]] if unclaimed else []

    def _claim(self, study: Study, trial_id: int, number: int, key: str, choices: dict[str, Choice],
               delta: float | None = None) -> bool:
        """Write the intent, re-read, and keep it only if no other live or finished trial holds it.
        It fails too when another worker finishes the trial meanwhile (takes this one for dead: see
        :func:`~aqsvit.search.study.recover_stale`): a FAIL trial holds nothing. ``delta``: the
        front's delta being walked (``key`` is claimed for it, :func:`at_key`), which the objective
        measures an assignment against."""
        storage = study._storage
        params = self.space.params(choices)
        try:
            storage.set_trial_system_attr(trial_id, KEY_ATTR, key if delta is None else at_key(delta, key))
            trials = study_trials(storage, study._study_id)
            ledger = self._ledger(study._study_id, delta)
            ledger.read(trials)
            if trials[number].state.is_finished():  # failed meanwhile: holds nothing
                return False
            if any(holder != trial_id for holder in ledger.holders(trials, key)):
                storage.set_trial_system_attr(trial_id, KEY_ATTR, None)
                return False
            if key.startswith(VERIFY_PREFIX):
                storage.set_trial_system_attr(trial_id, VERIFY_ATTR, True)
            elif key.startswith(PROBE_PREFIX):
                storage.set_trial_system_attr(trial_id, PROBE_ATTR, True)
            if delta is not None and not key.startswith(PROBE_PREFIX):
                storage.set_trial_system_attr(trial_id, DELTA_ATTR, delta)
        except UpdateFinishedTrialError:
            return False
        self._claimed[trial_id] = params
        return True

    def add_measured(self, study: Study, trial: FrozenTrial, delta: float | None = None) -> bool:
        """Add ``trial``, a finished trial of an assignment of the space measured outside the study
        (e.g. :func:`aqsvit.search.run.record_measured`), as that assignment's outcome (for the
        front's walk for ``delta``), unless some trial holds the assignment already. It is claimed
        like a proposal first, so workers adding the same outcome at once keep at most one (a
        withdrawn copy ends PRUNED and idle). Nothing is added either when another worker fails the
        new trial before it is written whole (takes it for dead, as it would a trial of a stalled
        worker): the walk measures that assignment."""
        storage = study._storage
        choices = self.space.choices_from_params(trial.params)
        key = self.space.key(choices)
        trials = study_trials(storage, study._study_id)
        ledger = self._ledger(study._study_id, delta)
        ledger.read(trials)
        if ledger.holders(trials, key):
            return False  # a resumed study, or another worker's copy: nothing to add
        trial_id = storage.create_new_trial(study._study_id)
        try:
            if not self._claim(study, trial_id, storage.get_trial(trial_id).number, key, choices, delta):
                storage.set_trial_system_attr(trial_id, IDLE_ATTR, True)
                storage.set_trial_state_values(trial_id, TrialState.PRUNED)
                return False
            del self._claimed[trial_id]
            for name, value in trial.params.items():
                distribution = trial.distributions[name]
                storage.set_trial_param(trial_id, name, distribution.to_internal_repr(value), distribution)
            for name, value in trial.user_attrs.items():
                storage.set_trial_user_attr(trial_id, name, value)
            for name, value in trial.system_attrs.items():
                storage.set_trial_system_attr(trial_id, name, value)
            storage.set_trial_state_values(trial_id, trial.state, trial.values)
        except UpdateFinishedTrialError:
            return False
        return True

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)
        self._claimed.pop(trial._trial_id, None)

    def reseed_rng(self) -> None:
        self._independent_sampler.reseed_rng()

    @staticmethod
    def _stop(study: Study) -> None:
        try:
            study.stop()
        except RuntimeError:  # ask/tell use outside study.optimize: nothing to stop
            pass
