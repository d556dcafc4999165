"""The sampler plug point (``sampler=<name>``): each registered sampler is a small settings dataclass
whose fields are its config group's keys and whose ``build`` makes the Optuna sampler.

Adding one (from any module listed in ``plugins``)::

    @register_sampler("mine")
    @dataclass
    class Mine:
        temperature: float = 1.0            # conf/sampler/mine.yaml: name: mine, temperature: 1.0

        def validate(self) -> None:         # optional: called before any work
            check_number("sampler.temperature", self.temperature, 0, lo_open=True)

        def build(self, ctx: SamplerContext) -> optuna.samplers.BaseSampler:
            return MySampler(ctx.space, seed=ctx.seed, temperature=self.temperature)

``stepwise=True`` marks a sampler that proposes each candidate once and verifies what it keeps
(GreedySampler, BeamSampler): the screen applies, and failed trials are re-proposed by the sampler
instead of being retried by Optuna.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from aqsvit.errors import check_int
from aqsvit.registry import Registry, build_options, is_settings_class
from aqsvit.search.stepwise import BeamSampler, GreedySampler
from aqsvit.search.space import SearchSpace
from aqsvit.search.study import quiet_experimental
from aqsvit.settings import SearchSettings

SAMPLERS: Registry[type] = Registry("sampler.name", "a settings dataclass with a build(ctx) method", is_settings_class)


def register_sampler(name: str, *, stepwise: bool = False) -> Callable[[type], type]:
    """Register a sampler settings dataclass under ``name`` (see the module docstring)."""
    return SAMPLERS.register(name, stepwise=stepwise)


@dataclass(frozen=True)
class SamplerContext:
    """What every sampler may use besides its own options."""

    space: SearchSpace
    seed: int = 0
    start: str = SearchSettings.start          # search.start, for the stepwise samplers (its one default)
    on_wait: Callable[..., Any] | None = None  # called while a stepwise sampler waits on other workers
    front: tuple[float, ...] = ()              # the deltas a stepwise sampler's study answers (search.front)


def sampler_options(name: str, options: Mapping[str, Any]) -> Any:
    """The validated settings of sampler ``name``."""
    return build_options(SAMPLERS, name, options, "sampler")


def make_sampler(name: str, settings: Any, ctx: SamplerContext) -> optuna.samplers.BaseSampler:
    """What sampler ``name``'s ``settings`` build for ``ctx``, checked to be an Optuna sampler."""
    return SAMPLERS.built(name, settings.build(ctx), "an optuna.samplers.BaseSampler",
                          lambda s: isinstance(s, optuna.samplers.BaseSampler))


def is_stepwise(name: str) -> bool:
    return bool(SAMPLERS.meta(name)["stepwise"])


@register_sampler("greedy", stepwise=True)
@dataclass
class Greedy:
    """GreedySampler: walk the units once, keep the cheapest feasible choice of each."""

    def build(self, ctx: SamplerContext) -> optuna.samplers.BaseSampler:
        return GreedySampler(ctx.space, seed=ctx.seed, on_wait=ctx.on_wait, start=ctx.start, front=ctx.front)


@register_sampler("beam", stepwise=True)
@dataclass
class Beam:
    """BeamSampler: keep the ``width`` best partial assignments."""

    width: int = 3

    def validate(self) -> None:
        check_int("sampler.width", self.width, 1)

    def build(self, ctx: SamplerContext) -> optuna.samplers.BaseSampler:
        return BeamSampler(ctx.space, width=self.width, seed=ctx.seed, on_wait=ctx.on_wait, start=ctx.start,
                           front=ctx.front)


@register_sampler("tpe")
@dataclass
class Tpe:
    """Optuna's TPE (multivariate, constant liar for parallel workers), for comparison."""

    def build(self, ctx: SamplerContext) -> optuna.samplers.BaseSampler:
        with quiet_experimental():  # both options are marked experimental; chosen on purpose
            return optuna.samplers.TPESampler(seed=ctx.seed, multivariate=True, constant_liar=True)


@register_sampler("nsga2")
@dataclass
class Nsga2:
    """Optuna's NSGA-II, for comparison."""

    def build(self, ctx: SamplerContext) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=ctx.seed)


@register_sampler("random")
@dataclass
class Random:
    """Optuna's random sampler, for comparison."""

    def build(self, ctx: SamplerContext) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=ctx.seed)
