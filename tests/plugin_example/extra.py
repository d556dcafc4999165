"""A plug-in from outside the package: one sampler, one pruner and one data set, registered on
import (``aqsvit search plugins=[tests.plugin_example.extra] hydra.searchpath=[file://.../conf]``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna
import torch

from aqsvit.data import register_dataset
from aqsvit.data.bundle import DataBundle, tensor_bundle
from aqsvit.data.images import to_model_input
from aqsvit.data.preprocess import IDENTITY, Preprocess
from aqsvit.errors import check_number
from aqsvit.search import StepPruner
from aqsvit.search.pruners import register_pruner
from aqsvit.search.samplers import SamplerContext, register_sampler


@register_sampler("qmc")
@dataclass
class Qmc:
    """Optuna's quasi-Monte Carlo sampler."""

    scramble: bool = True

    def build(self, ctx: SamplerContext) -> optuna.samplers.BaseSampler:
        return optuna.samplers.QMCSampler(scramble=self.scramble, seed=ctx.seed, warn_independent_sampling=False)


class LogitLimit(StepPruner):
    """Stop a candidate whose logit drift on the whole calibration set exceeds ``limit``."""

    definition = "logit"

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def should_prune_step(self, study, step, last, choices=None) -> str | None:
        return "logit limit" if last and step.values["logit"] > self.limit else None

    def prune(self, study, trial) -> bool:
        return False


@register_pruner("logit_limit")
@dataclass
class LogitLimitSettings:
    limit: float = 0.5

    def validate(self) -> None:
        check_number("pruner.limit", self.limit, 0, lo_open=True)

    @property
    def definition(self) -> str:
        return LogitLimit.definition

    def build(self, delta: float) -> optuna.pruners.BasePruner:
        return LogitLimit(self.limit)


@register_dataset("noisy_digits")
def noisy_digits(input_shape: tuple[int, int, int], noise: float = 0.1, seed: int = 0,
                 preprocess: Preprocess = IDENTITY) -> DataBundle:
    """scikit-learn's digits with seeded Gaussian pixel noise."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = raw.images.astype(np.float32) / 16.0
    images += np.random.default_rng(seed).normal(0, noise, images.shape).astype(np.float32)
    x = to_model_input(images.clip(0, 1), input_shape, "noisy_digits")
    return tensor_bundle("noisy_digits", x, torch.as_tensor(raw.target), 10, 450, 256, seed, preprocess)
