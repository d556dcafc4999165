"""The interface of a pruner the objective asks after each calibration step: :class:`StepPruner`.

Optuna 5 raises NotImplementedError for ``trial.report``/``trial.should_prune`` in multi-objective
studies, and a quantization study has two objectives; so the objective asks a :class:`StepPruner`
itself after every calibration batch, with the step's drift and the candidate's choices. Any other
``optuna.pruners.BasePruner`` (MedianPruner, ...) works too: the objective records the step's drift
(the pruner's ``definition``) as the trial's intermediate value and calls its ordinary
``prune(study, trial)`` on a single-objective view of the study (direction: minimize the drift).
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING

from optuna.pruners import BasePruner

if TYPE_CHECKING:
    from optuna.study import Study

    from aqsvit.proxy.drift import DriftStep
    from aqsvit.search.space import Choice


class StepPruner(BasePruner):
    """A pruner that decides from each calibration step's drift (see the module docstring).

    ``definition`` names the drift (``aqsvit.proxy.DEFINITIONS``) its decisions read; the objective
    records that one in every trial (None: the one the objective is given, ``pruner.definition``). :meth:`prune` (the single-objective hook) is Optuna's
    abstract method still: :class:`~aqsvit.search.DriftPruner` reads its last step back from the
    trial's ``drift_steps`` user attr."""

    definition: str | None = None

    @abstractmethod
    def should_prune_step(self, study: Study, step: DriftStep, last: bool,
                          choices: Mapping[str, Choice] | None = None) -> str | None:
        """The reason to prune after ``step`` (``last``: the whole calibration set), else None.
        ``choices`` is the candidate's assignment by unit."""
