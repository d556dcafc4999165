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


@pytest.fixture(scope="session")
def finished_search(reference, tmp_path_factory):
    """A finished default greedy search in its own SQLite file, and its report folder."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("finished")
    url = f"sqlite:///{folder}/study.db"
    common = [f"storage.url={url}", "search.study_name=finished", f"report.dir={folder}/reports", "progress=false",
              f"checkpoint_dir={CACHE}"]
    for command in ("search", "report"):
        result = subprocess.run([sys.executable, "-m", "aqsvit.cli", command, *common],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    return {"url": url, "name": "finished", "report": folder / "reports" / "finished"}
