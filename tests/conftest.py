"""Shared fixtures: the real tiny digits model, trained once and cached like the CLI does."""
from __future__ import annotations

import os

import pytest
import torch

import aqsvit  # noqa: F401
from aqsvit.data import load_dataset
from aqsvit.models import model_spec
from aqsvit.training import get_reference

CACHE = os.environ.get("AQSVIT_TEST_CHECKPOINTS", "studies/checkpoints")


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits_data():
    spec = model_spec("spikformer_digits")
    return load_dataset("digits", spec.input_shape, seed=0)


@pytest.fixture(scope="session")
def reference(digits_data):
    """The FP reference checkpoint of the default model (trained on first use, ~50 s)."""
    return get_reference(model_spec("spikformer_digits"), digits_data, root=CACHE, progress=False, seed=0)


@pytest.fixture(scope="session")
def evaluator(reference, digits_data):
    from aqsvit.search.evaluator import Evaluator
    return Evaluator(reference.build(), digits_data, reference.fp_accuracy)
