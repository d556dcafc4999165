"""The walk's readings of a growing study, each finished trial read once.

Every ask of a stepwise sampler needs the :class:`~aqsvit.search.stepwise.outcome.Readings` of
the whole study; :func:`~aqsvit.search.stepwise.outcome.read_trials` over every trial costs
O(study) per ask (about 70 ms at 10,000 trials), on top of Optuna's own read. A finished trial
never changes (Optuna refuses every write to it), so :class:`Ledger` folds each one once and,
per read, looks only at the trials it has not seen finished: numbers new since its last read and
the ones live then. Trials are numbered 0, 1, 2... in their study, so ``trials[n]`` is trial
``n`` of the list Optuna's ``get_all_trials`` returns.
"""
from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Sequence
from dataclasses import replace

from optuna.trial import FrozenTrial

from aqsvit.search.stepwise.outcome import Readings, claim_live, fold_finished, held_key, read_trials


class Ledger:
    """:func:`read_trials` of one study, incrementally: the same readings, O(new + live trials)
    per :meth:`read` instead of O(study).

    Trials finish out of number order when several workers share a study; that changes nothing
    unless two finished trials share a key (the walk's claims prevent it; a trial taken over from
    a stalled worker can leave one), where the later number must win: then the ledger folds the
    finished trials again in number order. The readings always equal :func:`read_trials`' of the
    same list (tests/search/test_ledger.py); callers only read them (live claims go into ``claims``' own first map)."""

    def __init__(self, key_of: Callable[[FrozenTrial], str | None]) -> None:
        self._key_of = key_of
        self._finished = Readings()  # what the finished trials say
        self._folded_number: dict[str, int] = {}  # key -> number of the finished trial ``_finished`` reads it from
        self._live: list[int] = []  # numbers live at the last read, ascending
        self._seen = 0  # trials numbered below this were seen

    def read(self, trials: Sequence[FrozenTrial]) -> Readings:
        """The readings of ``trials``: all the study's trials in number order, as
        ``storage.get_all_trials`` or :func:`~aqsvit.search.trial_reads.study_trials` returns them
        (ValueError for any other list)."""
        if trials and trials[-1].number != len(trials) - 1 or len(trials) < self._seen:
            raise ValueError("a ledger reads all of one study's trials in number order")
        live, out_of_order = [], False
        for number in [*self._live, *range(self._seen, len(trials))]:
            trial = trials[number]
            if not trial.state.is_finished():
                live.append(number)
                continue
            key = fold_finished(self._finished, trial, self._key_of)
            if key is not None:
                out_of_order |= self._folded_number.get(key, -1) > number
                self._folded_number[key] = max(number, self._folded_number.get(key, -1))
        if out_of_order:
            self._finished = read_trials((t for t in trials if t.state.is_finished()), self._key_of)
        self._live, self._seen = live, len(trials)
        readings = replace(self._finished, claims=ChainMap({}, self._finished.claims))  # live claims go on top
        for number in live:
            claim_live(readings, trials[number], self._key_of)
        return readings

    @property
    def live(self) -> list[int]:
        """Numbers of the trials live at the last :meth:`read`."""
        return list(self._live)

    def holders(self, trials: Sequence[FrozenTrial], key: str) -> list[int]:
        """Ids of trials holding ``key`` in ``trials``, the list last :meth:`read`: a finished one
        whose reading counts and every live one claiming it (not only the first, as the readings'
        claims keep: a claim is kept only while no other trial holds its key)."""
        finished = self._finished.claims.get(key)
        live = [trials[n]._trial_id for n in self._live if held_key(trials[n], self._key_of) == key]
        return live if finished is None else [finished, *live]
