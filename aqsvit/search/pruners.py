"""The pruner plug point (``pruner=<name>``): each registered pruner is a settings dataclass whose
fields are its config group's keys; ``build(delta)`` makes the ``optuna.pruners.BasePruner`` the
objective asks after every calibration step (or None: no early stop), and ``definition`` names the
drift recorded in every trial (``aqsvit.proxy.DEFINITIONS``).

Adding one (from any module listed in ``plugins``)::

    @register_pruner("mine")
    @dataclass
    class Mine:
        definition: str = "logit"
        limit: float = 0.5                  # conf/pruner/mine.yaml: name, definition, limit

        def build(self, delta: float) -> optuna.pruners.BasePruner | None:
            return MyPruner(delta, self.definition, self.limit)

A :class:`~aqsvit.search.StepPruner` is asked ``should_prune_step(study, step, last, choices)``
after every calibration step (multi-objective studies cannot use ``trial.should_prune``);
:class:`DriftPruner` is the model to follow. Any other Optuna pruner (``MedianPruner``...) reads
each step's drift as the trial's intermediate value through its own ``prune`` (see
:mod:`aqsvit.search.step_pruner`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from optuna.pruners import BasePruner

from aqsvit.errors import check_choice, check_flag, check_number
from aqsvit.proxy.drift import DEFINITIONS
from aqsvit.registry import Registry, build_options, is_settings_class
from aqsvit.search._pruner import DriftPruner
from aqsvit.search.step_pruner import StepPruner

PRUNERS: Registry[type] = Registry("pruner.name", "a settings dataclass with a build(delta) method", is_settings_class)


def register_pruner(name: str) -> Callable[[type], type]:
    """Register a pruner settings dataclass under ``name`` (see the module docstring)."""
    return PRUNERS.register(name)


def pruner_options(name: str, options: Mapping[str, Any]) -> Any:
    """The validated settings of pruner ``name``."""
    return build_options(PRUNERS, name, options, "pruner")


def make_pruner(name: str, settings: Any, delta: float) -> BasePruner | None:
    """What pruner ``name``'s ``settings`` build for ``delta``: an Optuna pruner (or None), and a
    :class:`StepPruner` whenever it offers ``should_prune_step`` (the contract the objective checks:
    a plain pruner's ``should_prune_step`` would never be asked)."""
    def accepts(pruner: object) -> bool:
        if pruner is None or isinstance(pruner, StepPruner):
            return True
        return isinstance(pruner, BasePruner) and not hasattr(pruner, "should_prune_step")
    return PRUNERS.built(name, settings.build(delta), "an optuna.pruners.BasePruner or None (one with "
                         "should_prune_step subclasses aqsvit.search.StepPruner)", accepts)


@register_pruner("drift")
@dataclass
class Drift:
    """DriftPruner: the paired calibration gate, an optional drift threshold ``tau`` (fixed, or
    calibrated online), and beam's tie gate."""

    definition: str = "logit"
    tau: float | None = None
    calibrate: bool = False

    def validate(self) -> None:
        check_choice("pruner.definition", self.definition, DEFINITIONS.names())
        if self.tau is not None:
            check_number("pruner.tau", self.tau, 0, lo_open=True)
        check_flag("pruner.calibrate", self.calibrate)

    def build(self, delta: float) -> BasePruner | None:
        return DriftPruner(delta, self.definition, self.tau, self.calibrate)

    def describe(self) -> str:
        return f"drift {self.definition} tau={self.tau} calibrate={self.calibrate}"


@register_pruner("none")
@dataclass
class NoPruner:
    """No early stop: every candidate gets its accuracy evaluation; ``definition`` is still recorded."""

    definition: str = "logit"

    def validate(self) -> None:
        check_choice("pruner.definition", self.definition, DEFINITIONS.names())

    def build(self, delta: float) -> BasePruner | None:
        return None

    def describe(self) -> str:
        return f"none {self.definition} tau=None calibrate=False"
