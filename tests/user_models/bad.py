"""Targets that must fail as one line: not callable, not a module, not a classifier."""
from __future__ import annotations

from torch import nn

not_callable = 3


def not_a_module() -> str:
    return "a string"


def flat_features() -> nn.Module:
    """Maps [N, 1, 8, 8] to [N, 64], not to class scores [N, 10]."""
    return nn.Flatten()
