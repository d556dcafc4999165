"""The parity script's promises that need no reference code: the random weights it gives a model."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from aqsvit.models import create_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "parity"))
from reference_driver import randomize  # noqa: E402


def test_random_weights_have_nontrivial_batchnorms_and_nonzero_biases():
    model = create_model("spikformer_cifar10_4_384", embed_dims=32, num_heads=2, depths=1)
    randomize(model, torch.Generator().manual_seed(0))
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns
    for bn in bns:
        assert (bn.running_mean != 0).all() and (bn.running_var != 1).all()
        assert (bn.weight != 1).all() and (bn.bias != 0).all() and bn.num_batches_tracked > 0
    biases = [m.bias for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and m.bias is not None]
    assert len(biases) == 4 * 1 + 2 + 1  # q, k, v, proj; fc1, fc2; head
    assert all((b.abs() >= 0.05).all() for b in biases)


def test_a_partial_parity_run_keeps_the_other_rows_and_lists_each_command_with_its_rows():
    from run import HEADER, merged

    legacy = "\n".join(["# Parity", "", "Command: `run.py --venv A`", "", HEADER, "|---|", "| X1 | old |",
                        "| X2 | old |"])
    commands, table = merged(legacy, "run.py --only Y1", {"Y1": "| Y1 | new |"})
    assert commands == [("run.py --venv A", ["X1", "X2"]), ("run.py --only Y1", ["Y1"])]
    assert table == ["| X1 | old |", "| X2 | old |", "| Y1 | new |"]
    text = "\n".join([*(f"- `{c}`: {'; '.join(labels)}" for c, labels in commands), HEADER, "|---|", *table])
    commands, table = merged(text, "run.py --only X2 Y1", {"X2": "| X2 | newer |", "Y1": "| Y1 | newer |"})
    assert commands == [("run.py --venv A", ["X1"]), ("run.py --only X2 Y1", ["X2", "Y1"])]
    assert table == ["| X1 | old |", "| X2 | newer |", "| Y1 | newer |"]
