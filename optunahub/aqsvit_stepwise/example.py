"""GreedySampler and BeamSampler on a cheap synthetic quantization problem (runs in about a second).

Four "layers" of different sizes each get a quantization scheme and bit width. The error model
grows as bits shrink (PoT a little worse than uniform at one width); the constraint keeps the total
error within a budget, and the second objective is the weight memory in bits. Each sampler walks
the layers and returns the cheapest assignment it can reach within the budget, then stops the
study by itself. The objective also asks for one parameter outside the space (a calibration batch
size): the sampler's independent sampler draws it, as for any Optuna sampler.

Through OptunaHub the classes come from ``optunahub.load_module("samplers/aqsvit_stepwise")``;
this file imports them from aqsvit directly so that it runs with only optuna and aqsvit installed.
"""
from __future__ import annotations

import optuna

from aqsvit.search import BeamSampler, GreedySampler, SearchSpace

SIZES = {"stem": 40, "attention": 300, "mlp": 500, "head": 20}  # weights per layer
SENSITIVITY = {"stem": 2.0, "attention": 0.5, "mlp": 0.3, "head": 1.5}  # error at 2 bits
BUDGET = 1.2  # most total error allowed

space = SearchSpace.from_units(SIZES, schemes=("uniform", "pot"), bits=(8, 6, 4, 3, 2))


def error(choices: dict[str, tuple[str, int]]) -> float:
    return sum(SENSITIVITY[layer] * 2.0 ** -(bits - 2) * (1.3 if scheme == "pot" else 1.0)
               for layer, (scheme, bits) in choices.items())


def objective(trial: optuna.Trial) -> tuple[float, float]:
    choices = space.suggest(trial)  # the sampler's candidate: one (scheme, bits) per layer
    trial.suggest_int("calib_batch", 8, 64, step=8)  # outside the space: independent sampler
    err = error(choices)
    trial.set_constraint("error", err - BUDGET)  # feasible when <= 0
    return -err, space.cost(choices)


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for sampler in (GreedySampler(space, seed=0), BeamSampler(space, width=2, seed=0)):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        study.optimize(objective, n_trials=200)  # the sampler stops the study when its walk ends
        result = sampler.result(study)
        ratio = 32 * sum(SIZES.values()) / space.cost(result)  # cost: weight bits
        print(f"{type(sampler).__name__}: {len(study.trials)} trials, error {error(result):.3f} "
              f"<= {BUDGET}, {ratio:.2f}x smaller than fp32: {result}")
