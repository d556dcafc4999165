"""The chip exports against the vendors' own quantization code, where their Python packages install
here: rockpool (SynSense Xylo) and sinabs (SynSense Speck). Each vendor function is given the
weights our export makes the chip compute with (codes times scales) and must quantize them to our
integer codes, so that the weights its toolchain loads are the weights the search evaluated.

Intel's Lava needs Python < 3.11 and BrainChip's quantizeml TensorFlow, which wants an older numpy
than ours: the loihi2 and akida exports are checked in venvs of their own by
benchmarks/vendor/loihi2.sh and akida.sh (docs/targets.md).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from rockpool.transform.quantize_methods import channel_quantize

from aqsvit.hardware import TARGETS
from aqsvit.quant import LayerQuantizer
from aqsvit.report.chip_export import save_for_target


def sinabs_discretize() -> ModuleType:
    """sinabs' DynapCNN discretization module, loaded on its own: the package around it imports
    samna, SynSense's device runtime, which does not install from the public index."""
    origin = importlib.util.find_spec("sinabs").origin
    path = Path(origin).parent / "backend" / "dynapcnn" / "discretize.py"
    spec = importlib.util.spec_from_file_location("sinabs_dynapcnn_discretize", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exported_layers(model: torch.nn.Module, assignment, target, path: Path):
    """(header layer, integer codes [C, -1], the weights the chip computes with [C, -1]) per layer."""
    save_for_target(path, model, assignment, target)
    with np.load(path, allow_pickle=False) as archive:
        for layer in json.loads(archive["header"].tobytes())["layers"]:
            codes = archive[f"weights/{layer['name']}"].astype(np.int64)
            codes = codes.reshape(codes.shape[0], -1)
            scales = archive[f"scales/{layer['name']}"].astype(np.float32)
            yield layer, codes, codes.astype(np.float32) * scales.reshape(-1, 1)


def test_rockpool_channel_quantize_gives_our_xylo_codes_at_every_uniform_width(reference, tmp_path):
    target = TARGETS["xylo"]
    model = reference.build()
    layers = LayerQuantizer(model, target=target).layers
    widths = target.widths["uniform"]
    assignment = {layer.name: ("uniform", widths[i % len(widths)]) for i, layer in enumerate(layers)}
    checked = set()
    for layer, codes, weights in exported_layers(model, assignment, target, tmp_path / "m.xylo.npz"):
        out = codes.shape[0]
        # rockpool's layout: input weights [inputs, target neurons, synapses]; one scale per target neuron
        quantized = channel_quantize(
            weights_in=weights.T[:, :, None], weights_rec=np.zeros((out, out, 1)), weights_out=np.ones((out, 1)),
            threshold=np.ones(out), threshold_out=np.ones(1), dash_mem=0, dash_mem_out=0, dash_syn=0,
            dash_syn_2=0, dash_syn_out=0, bits_per_weight=layer["bits"])
        assert np.array_equal(quantized["weights_in"][:, :, 0].T, codes), layer["name"]
        checked.add(layer["bits"])
    assert checked == set(widths)


def test_sinabs_discretization_gives_our_speck_codes(reference, tmp_path):
    discretize = sinabs_discretize()
    target = TARGETS["speck"]
    model = reference.build()
    layers = LayerQuantizer(model, target=target).layers
    bits = discretize.DYNAPCNN_WEIGHT_PRECISION_BITS  # 8: every layer of a Speck export is discretized to it
    assignment = {layer.name: ("uniform", bits) for layer in layers}
    low = 0
    for layer, codes, weights in exported_layers(model, assignment, target, tmp_path / "m.speck.npz"):
        w = torch.from_numpy(weights)
        scaling = discretize.determine_discretization_scale(w, bits)
        assert np.array_equal(discretize.discretize_tensor(w, scaling).numpy(), codes), layer["name"]
        low += int(codes.min() == -(2 ** (bits - 1)))
    assert low > 0  # some layer's negative extreme dominates: the level -128 sinabs uses was exercised
