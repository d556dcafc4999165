"""BeamSampler: keep the B best partial assignments while walking the units."""
from __future__ import annotations

from aqsvit.errors import check_int
from aqsvit.search.stepwise.base import StepwiseSampler
from aqsvit.search.stepwise.outcome import Outcome, Plan
from aqsvit.search.space import Choice, SearchSpace


class BeamSampler(StepwiseSampler):
    """Beam quantization search (AQ4SViT's beam variant): wider than greedy, smaller models.

    The beam starts as the most precise assignment (or, with another ``start``, the cheapest
    feasible one-width one or the pick of an integer program over single-unit probes). At each
    unit (in ``space.units`` order) every beam member is expanded with its current choice for that
    unit and every cheaper one; once all those children are evaluated, the beam becomes the
    ``width`` feasible children with the least weight memory (ties: lower drift, from the
    ``drift`` user attr). Children are evaluated cheapest first, and a child dearer than the
    ``width``-th cheapest feasible one is never evaluated: it could not enter the beam, so the
    result equals evaluating them all. With the :class:`DriftPruner`, a child whose drift loses its
    tie at that bound is pruned after its calibration forward (:meth:`outranked`), for the same
    reason. At most ``units x width x candidates`` trials (plus the start's own). When the last
    unit is done the sampler calls ``study.stop()``; :meth:`result` is the best member of the
    final beam.

    Example:
        .. code-block:: python

            import optuna
            from aqsvit.search import BeamSampler, SearchSpace

            space = SearchSpace.from_units({"a": 100, "b": 10})

            def objective(trial):  # as in GreedySampler's example
                choices = space.suggest(trial)
                error = sum(3 / space.choice_bits(c) for c in choices.values())
                trial.set_constraint("error", error - 1.2)
                return -error, space.cost(choices)

            sampler = BeamSampler(space, width=3)
            study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
            study.optimize(objective, n_trials=200)
            print(sampler.result(study))

    Note:
        Like :class:`GreedySampler`, the state lives in storage: workers in separate processes
        or machines share one study, never evaluate one assignment twice, and a restarted study
        continues where it stopped. All children of a step are independent, so up to
        ``width x candidates`` workers are busy at once.

    Args:
        space: the units, in walk order, and the allowed schemes and bit widths.
        width: the beam width B (>= 1).
        poll_interval, seed, on_wait, start, independent_sampler, front: as for :class:`GreedySampler`
            (parameters outside ``space`` and trials that ask for none of it: as there).
    """

    def __init__(self, space: SearchSpace, width: int = 3, **kwargs) -> None:
        check_int("sampler.width", width, 1)
        super().__init__(space, **kwargs)
        self.width = width
        # per walk (a front's delta) and start, per finished step, a cache
        self._decided: dict[tuple[float | None, str], list[tuple[dict[str, Outcome], list[dict]]]] = {}
        # per walk (a front's delta, else None), (cost, drift) of the feasible children known when
        # this process last planned its open step
        self._frontiers: dict[float | None, list[tuple[int, float]]] = {}

    def outranked(self, choices: dict[str, Choice], drift: float, delta: float | None = None) -> bool:
        """Whether a child of the open step, with this ``drift``, cannot enter the beam: ``width``
        feasible children already rank before it (less memory, or as little and lower drift).
        The :class:`DriftPruner` asks this after the calibration forward, so a child tied at the
        beam's memory bound is pruned without its accuracy evaluation when its drift loses the tie.
        Outcomes known later only add children, so the answer stays right (unless a failed
        verification revises screened outcomes: then outranked children become undecided again).
        ``delta``: the front's walk the candidate belongs to (ignored without a front)."""
        key = (self.space.cost(choices), drift)
        return sum(known < key for known in self._frontiers.get(delta if self.front else None, [])) >= self.width

    def plan(self, outcomes: dict[str, Outcome]) -> Plan:
        space = self.space
        self._frontiers[self._walking] = []
        start = self.start_assignment(outcomes)
        if isinstance(start, Plan):
            return start
        beam = [start]
        steps = self._decided.setdefault((self._walking, space.key(start)), [])
        for i, unit in enumerate(space.units):
            decided = steps[i] if i < len(steps) else None
            if decided is not None and all(outcomes.get(k) == o for k, o in decided[0].items()):
                beam = decided[1]  # same deciding outcomes: same beam, without rebuilding the step
                continue
            del steps[i:]
            children: dict[str, tuple[int, dict]] = {}  # key -> (cost, child), computed once
            for parent in beam:
                for choice in [parent[unit.name], *space.candidates(below=parent[unit.name])]:
                    child = {**parent, unit.name: choice}
                    children.setdefault(space.key(child), (space.cost(child), child))
            # cheapest first; among equal memory, the better parent's children first (insertion
            # order): their drift tends to be lower, so more of the tied rest is outranked
            ranked = sorted(children.items(), key=lambda kc: kc[1][0])
            known = [(k, c) for k, c in ranked if k in outcomes and outcomes[k].feasible]
            # a child dearer than the width-th cheapest feasible one can never enter the beam
            bound = known[self.width - 1][1][0] if len(known) >= self.width else float("inf")
            pending = [child for k, (cost, child) in ranked if k not in outcomes and cost <= bound]
            if pending:
                self._frontiers[self._walking] = [(cost, outcomes[k].drift) for k, (cost, _) in known]
                return Plan(proposals=pending)
            if not known:
                break
            known.sort(key=lambda kc: (kc[1][0], outcomes[kc[0]].drift, kc[0]))
            beam = [child for _, (_, child) in known[: self.width]]
            # the outcomes this decision read; later outcomes (children above the bound) cannot change it
            steps.append(({k: outcomes[k] for k, (cost, _) in ranked if cost <= bound}, beam))
        return Plan(result=beam[0])
