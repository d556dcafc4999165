"""The search space: one ``(scheme, bits)`` choice per unit, as Optuna parameters.

A unit is what one choice applies to, by granularity (AQ4SViT's hierarchy): ``network`` (one
choice for every layer), ``block`` (stem, each transformer block, head) or ``layer``. Each unit
``u`` is two categorical parameters, ``<u>.scheme`` and ``<u>.bits``; the unit order is the order
the stepwise samplers walk.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import CategoricalDistribution

from aqsvit.errors import AqsvitError, check_int, invalid
from aqsvit.hardware import ANY, HardwareTarget
from aqsvit.schemes import MAX_BITS, MIN_BITS, SCHEMES

if TYPE_CHECKING:  # the space itself needs no torch (the stepwise samplers and OptunaHub import it)
    import torch

    from aqsvit.quant import QuantLayer

GRANULARITIES = ("network", "block", "layer")
ORDERS = ("network", "size", "sensitivity")
Choice = tuple[str, int]


@dataclass(frozen=True)
class Unit:
    """A group of layers that share one choice."""

    name: str
    layers: tuple[str, ...]
    numel: int
    # squared weight perturbation of each choice against the space's start choice, summed over the
    # unit's weights (:meth:`SearchSpace.with_weight_noise`); empty when no weights are known
    noise: tuple[tuple[Choice, float], ...] = ()


@dataclass(frozen=True)
class SearchSpace:
    """Units in walk order, the allowed schemes and bit widths, and the hardware target that
    decides which of their pairs a unit may take and what each costs in memory."""

    units: tuple[Unit, ...]
    schemes: tuple[str, ...]
    bits: tuple[int, ...]
    target: HardwareTarget = ANY

    def __post_init__(self) -> None:
        if not self.schemes:
            raise invalid("quant.schemes", [], SCHEMES)
        for scheme in self.schemes:
            if scheme not in SCHEMES:
                raise invalid("quant.schemes", scheme, SCHEMES)
        if not self.bits:
            raise invalid("quant.bits", [], f"a non-empty list of integers {MIN_BITS}..{MAX_BITS}")
        for b in self.bits:
            check_int("quant.bits", b, MIN_BITS, MAX_BITS)
        if not self.units:
            raise AqsvitError("search space: the model has no quantizable layers")
        held = [(s, b) for s in self.schemes for b in self.bits if self.target.holds(s, b)]
        if not held:
            raise AqsvitError(f"target {self.target.name} holds none of quant.schemes {list(self.schemes)} x "
                              f"quant.bits {list(self.bits)}; it holds {self.target.describe()}")
        if len(held) == 1:  # one assignment, nothing to choose (and Optuna never asks a sampler for it)
            raise AqsvitError(f"quant.bits: got {list(self.bits)} with quant.schemes {list(self.schemes)}: one "
                              "choice per layer leaves nothing to search; allowed: at least two (scheme, bits) "
                              f"pairs target {self.target.name} holds")

    @classmethod
    def from_layers(cls, layers: Sequence[QuantLayer], schemes: Sequence[str], bits: Sequence[int],
                    granularity: str = "layer", target: HardwareTarget = ANY) -> SearchSpace:
        """Group ``layers`` into units by ``granularity`` (network order)."""
        if granularity not in GRANULARITIES:
            raise invalid("search.granularity", granularity, GRANULARITIES)
        groups: dict[str, list[QuantLayer]] = {}
        for layer in layers:
            unit = {"network": "network", "block": layer.block, "layer": layer.name}[granularity]
            groups.setdefault(unit, []).append(layer)
        units = tuple(Unit(name, tuple(l.name for l in group), sum(l.numel for l in group))
                      for name, group in groups.items())
        return cls(units, tuple(schemes), tuple(sorted(set(bits), reverse=True)), target)

    @classmethod
    def from_units(cls, sizes: Mapping[str, int], schemes: Sequence[str] = ("uniform", "pot"),
                   bits: Sequence[int] = (8, 6, 5, 4, 3, 2), target: HardwareTarget = ANY) -> SearchSpace:
        """A space over named units of given sizes, with no model behind it (tests, other uses)."""
        return cls(tuple(Unit(n, (n,), s) for n, s in sizes.items()), tuple(schemes),
                   tuple(sorted(set(bits), reverse=True)), target)

    def with_weight_noise(self, weight: Callable[[str], torch.Tensor]) -> SearchSpace:
        """The same space with each unit's :attr:`Unit.noise`: ``||Q_c(W) - Q_start(W)||^2`` for its
        start choice and every candidate ``c``, from ``weight(layer name)`` (the FP weight tensor)."""
        from aqsvit.quant.quantizers import quantize
        choices = (self.start, *self.candidates())

        def noise(unit: Unit) -> tuple[tuple[Choice, float], ...]:
            energy = dict.fromkeys(choices, 0.0)
            for name in unit.layers:
                w = weight(name).detach().float()
                start = quantize(w, *self.start, self.target.scale)
                for choice in choices:
                    energy[choice] += float((quantize(w, *choice, self.target.scale) - start).square().sum())
            return tuple(energy.items())
        return replace(self, units=tuple(replace(u, noise=noise(u)) for u in self.units))

    def reordered(self, order: Sequence[str]) -> SearchSpace:
        """The same space walked in ``order`` (unit names)."""
        by_name = {u.name: u for u in self.units}
        return replace(self, units=tuple(by_name[n] for n in order))

    # --- choices -------------------------------------------------------------------------------
    def choice_bits(self, choice: Choice) -> int:
        """Bits one weight of ``choice`` occupies as the target stores it (fp32: 32)."""
        bits = self._choice_bits.get(choice)
        if bits is None:
            bits = self._choice_bits[choice] = self.target.stored_bits(*choice)
        return bits

    @cached_property
    def _choice_bits(self) -> dict[Choice, int]:
        return {}  # choice -> its stored bits, filled as asked: the samplers cost every child of every step

    @property
    def start(self) -> Choice:
        """The most precise choice: fp32 when allowed, else the widest bits the target holds (uniform first)."""
        if "fp32" in self.schemes and self.target.holds("fp32", 32):
            return ("fp32", self.bits[0])
        return next((s, b) for b in self.bits for s in ("uniform", "pot")
                    if s in self.schemes and self.target.holds(s, b))

    def candidates(self, below: Choice | None = None) -> list[Choice]:
        """Every choice the target holds that stores less than ``below`` (default :attr:`start`),
        cheapest memory first (in one container the wider code, then uniform before pot). A code
        narrower than another of its scheme in the same container saves nothing and is left out."""
        limit = self.choice_bits(below or self.start)
        held = [(s, b) for b in sorted(self.bits) for s in ("uniform", "pot")
                if s in self.schemes and self.target.holds(s, b)]
        widest = {}
        for choice in held:  # ascending bits: the last of each (scheme, container) is its widest code
            widest[choice[0], self.choice_bits(choice)] = choice
        kept = set(widest.values())
        return sorted((c for c in held if c in kept and self.choice_bits(c) < limit),
                      key=lambda c: (self.choice_bits(c), -c[1], c[0] == "pot"))

    def uniform(self, choice: Choice) -> dict[str, Choice]:
        """The assignment that gives every unit ``choice`` (one scheme and width for all)."""
        return {u.name: choice for u in self.units}

    def cost(self, choices: Mapping[str, Choice]) -> int:
        """Weight bits of an assignment: the memory ranking the samplers use."""
        return sum(u.numel * self.choice_bits(choices[u.name]) for u in self.units)

    def key(self, choices: Mapping[str, Choice]) -> str:
        """A canonical string for an assignment: equal assignments, equal keys.

        The compact JSON of ``[[unit, scheme, bits], ...]``, built from pre-encoded unit names:
        the samplers compute it for every child of every step on every ask."""
        return "[" + ",".join(self._key_part(u.name, choices[u.name]) for u in self.units) + "]"

    def _key_part(self, unit: str, choice: Choice) -> str:
        """``[unit, scheme, bits]`` of :meth:`key`, encoded once per unit and choice."""
        part = self._key_parts.get((unit, choice))
        if part is None:
            part = self._key_parts[unit, choice] = f'[{json.dumps(unit)},"{choice[0]}",{int(choice[1])}]'
        return part

    @cached_property
    def _key_parts(self) -> dict[tuple[str, Choice], str]:
        return {}

    # --- Optuna parameters ------------------------------------------------------------------------
    def params(self, choices: Mapping[str, Choice]) -> dict[str, object]:
        out: dict[str, object] = {}
        for u in self.units:
            scheme, bits = choices[u.name]
            out[f"{u.name}.scheme"] = scheme
            out[f"{u.name}.bits"] = self.bits[0] if scheme == "fp32" else bits
        return out

    def choices_from_params(self, params: Mapping[str, object]) -> dict[str, Choice]:
        return {u.name: (str(params[f"{u.name}.scheme"]), int(params[f"{u.name}.bits"])) for u in self.units}

    def distributions(self) -> dict[str, CategoricalDistribution]:
        """Each unit's two categorical parameters: the schemes and the widths of which the target
        holds at least one pair (a pair it does not hold is pruned by the objective)."""
        schemes = [s for s in self.schemes if s == "fp32" and self.target.holds(s, 32)
                   or any(self.target.holds(s, b) for b in self.bits)]
        bits = [b for b in self.bits if any(self.target.holds(s, b) for s in self.schemes if s != "fp32")]
        out: dict[str, CategoricalDistribution] = {}
        for u in self.units:
            out[f"{u.name}.scheme"] = CategoricalDistribution(schemes)
            out[f"{u.name}.bits"] = CategoricalDistribution(bits or list(self.bits))
        return out

    def suggest(self, trial: optuna.Trial) -> dict[str, Choice]:
        """Ask ``trial`` for every unit's choice (works with any Optuna sampler)."""
        params = {name: trial.suggest_categorical(name, dist.choices)
                  for name, dist in self.distributions().items()}
        return self.choices_from_params(params)

    def assignment(self, choices: Mapping[str, Choice]) -> dict[str, Choice]:
        """Layer-level assignment for the quantizer."""
        return {layer: (choices[u.name][0], 32 if choices[u.name][0] == "fp32" else choices[u.name][1])
                for u in self.units for layer in u.layers}
