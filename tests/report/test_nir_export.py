"""NIR export: a user's spiking CNN (the docs example's model) goes to NIR with its quantized
weights, bits and scales, and comes back to torch with equal outputs; a Spikformer is refused."""
from __future__ import annotations

import ast
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from aqsvit.errors import AqsvitError
from aqsvit.models import create_model, model_spec
from aqsvit.quant import LayerQuantizer
from aqsvit.hardware import TARGETS
from aqsvit.report.nir_export import from_nir, to_nir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quantize_your_model.py"


def example_model_class() -> type[nn.Module]:
    """The example's model class, taken from the file without running its training."""
    tree = ast.parse(EXAMPLE.read_text())
    keep = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef))]
    namespace: dict = {}
    exec(compile(ast.Module(keep, type_ignores=[]), str(EXAMPLE), "exec"), namespace)
    return namespace["SpikingCNN"]


def example_model() -> nn.Module:
    torch.manual_seed(0)
    model = example_model_class()().eval()
    for module in model.modules():  # BatchNorm statistics as a trained model has them, not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.2, 0.2)
    return model


@pytest.mark.parametrize("target", ["any", "loihi2", "xylo"])
def test_example_cnn_round_trips_through_a_nir_file_with_equal_outputs(target, tmp_path):
    model, hardware = example_model(), TARGETS[target]
    quantizer = LayerQuantizer(model, target=hardware)
    options = [("uniform", 8), ("pot", 4), ("uniform", 4)] if target == "any" else [("uniform", 8), ("pot", 3)]
    assignment = {layer.name: options[i % len(options)] for i, layer in enumerate(quantizer.layers)}
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = to_nir(model, x, assignment, hardware)
    nir.write(tmp_path / "model.nir", graph)
    rebuilt = from_nir(nir.read(tmp_path / "model.nir"))
    with torch.no_grad(), quantizer.applied(assignment) as quantized:
        expected = quantized(x)
        functional.reset_net(quantized)
        got = rebuilt(x)
    assert expected.abs().sum() > 0  # spikes reached the classifier
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)

    read = nir.read(tmp_path / "model.nir")
    for layer in quantizer.layers:  # each weight node carries its layers' bits and scales
        node = read.nodes[layer.module_name.replace(".", "_")]
        recorded = node.metadata["quantization"][layer.name]
        assert (str(recorded["scheme"]), int(recorded["bits"])) == assignment[layer.name]
        scales = np.asarray(recorded["scales"])
        assert scales.shape == ((layer.out_channels,) if hardware.scale.per == "channel" else (1,))
        assert np.array_equal(node.weight, quantizer.quantized_weight(layer, *assignment[layer.name]).numpy())


def test_a_spikformer_is_refused_in_one_line_naming_its_first_foreign_node():
    spec = model_spec("spikformer_digits")
    model = create_model(spec)
    with pytest.raises(AqsvitError) as error:
        to_nir(model, torch.rand(4, *spec.input_shape))
    message = str(error.value)
    assert "\n" not in message and message.startswith("nir export: NIR cannot express patch_embed.")
    assert "MaxPool2d" in message
