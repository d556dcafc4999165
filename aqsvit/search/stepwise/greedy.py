"""GreedySampler: walk the units once, keep the cheapest feasible choice of each."""
from __future__ import annotations

from aqsvit.search.stepwise.base import StepwiseSampler
from aqsvit.search.stepwise.outcome import Outcome, Plan, first_feasible


class GreedySampler(StepwiseSampler):
    """Layer-by-layer greedy quantization search (AQ4SViT's greedy variant).

    Starting from the most precise assignment (or, with another ``start``, from the cheapest
    feasible one-width assignment or the pick of an integer program over single-unit probes), the
    sampler walks ``space.units`` in order. For the current unit it proposes its choices cheaper
    than the current one, cheapest memory first, each applied on top of the choices kept so far; the
    cheapest one that is feasible (a COMPLETE trial whose constraints are all <= 0; a PRUNED trial
    is infeasible) is kept, and the walk moves on. When no candidate is feasible the unit keeps its
    current choice. At most ``units x candidates`` trials, usually far fewer (plus the start's own:
    its probes and bisection). When the walk ends (and its final assignment has been evaluated) the
    sampler calls ``study.stop()``; :meth:`result` returns that assignment. A trial that asks for a
    parameter of the space after the end gets no candidate: it ends PRUNED (system attr
    ``aqsvit:idle``).

    Outside its space it is a plain Optuna sampler: any other parameter (another name, or a space
    name with another distribution) comes from ``independent_sampler``. A trial claims its
    candidate when it asks for its first parameter of the space, so trials that ask for none
    (a conditional objective) neither advance nor end the walk, and ``n_trials`` holds for them.
    A FAIL trial (an exception, a NaN value) holds no candidate: the walk proposes it again.

    Example:
        .. code-block:: python

            import optuna
            from aqsvit.search import GreedySampler, SearchSpace

            space = SearchSpace.from_units({"a": 100, "b": 10})

            def objective(trial):
                choices = space.suggest(trial)
                error = sum(3 / space.choice_bits(c) for c in choices.values())
                trial.set_constraint("error", error - 1.2)
                return -error, space.cost(choices)

            study = optuna.create_study(directions=["maximize", "minimize"],
                                        sampler=GreedySampler(space))
            study.optimize(objective, n_trials=100)
            print(study.sampler.result(study))

    Note:
        The state lives in storage, not in the sampler: any number of workers in any number of
        processes or machines can share one study through a storage that orders writes (the
        journal file, PostgreSQL). Workers that reach the same step together evaluate its next
        candidates speculatively (a candidate is never evaluated twice); a worker with nothing
        left to claim polls (inside its trial's first suggest of a space parameter) until the
        step is decided. A restarted study continues where it stopped and reaches the same final
        assignment. Parameters outside the space cost no storage read or write beyond Optuna's.

    Args:
        space: the units, in walk order, and the allowed schemes and bit widths.
        poll_interval: seconds between polls while other workers finish the current step.
        seed: seeds the jitter of polls and the default ``independent_sampler``.
        start: where the walk starts: a :class:`~aqsvit.search.stepwise.starts.WalkStart`
            (``PreciseStart()``, ``OneWidthStart()``, ``SensitivityStart()``, ``AutoStart()``) or its
            name (``precise``, ``one_width``, ``sensitivity``, ``auto``); see :class:`StepwiseSampler`.
        on_wait: called with ``(study, trial_id)`` while polling: keep this trial's heartbeat
            and fail the trials of dead workers (see :func:`aqsvit.search.study.wait_hook`).
        independent_sampler: samples every parameter outside ``space`` (default
            ``RandomSampler(seed=seed)``, as Optuna's CMA-ES and GP samplers do).
        front: deltas (points) one study answers, each walked as a search for it alone would
            (see :class:`StepwiseSampler`).
    """

    def plan(self, outcomes: dict[str, Outcome]) -> Plan:
        space = self.space
        current = self.start_assignment(outcomes)
        if isinstance(current, Plan):
            return current
        for unit in space.units:
            options = [{**current, unit.name: c} for c in space.candidates(below=current[unit.name])]
            chosen, pending = first_feasible(options, outcomes, space.key)
            if pending:
                return Plan(proposals=pending)
            current = chosen or current
        if space.key(current) not in outcomes:
            return Plan(proposals=[current])
        return Plan(result=current)
