"""Export for a hardware target: integer codes in the container type, scales in the target's form,
and a model rebuilt from them (the integer reference forward) that answers as the search measured."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional

from aqsvit.errors import AqsvitError
from aqsvit.data.bundle import iter_batches
from aqsvit.quant import LayerQuantizer
from aqsvit.hardware import TARGETS
from aqsvit.report.chip_export import load_for_target, save_for_target
from aqsvit.search.space import SearchSpace


@torch.no_grad()
def logits(model: torch.nn.Module, dataset) -> torch.Tensor:
    out = []
    for x, _ in iter_batches(dataset, 256):
        out.append(model(x))
        functional.reset_net(model)
    return torch.cat(out)


def mixed_assignment(quantizer: LayerQuantizer, target) -> dict[str, tuple[str, int]]:
    """Every layer a held choice, cycling through all the target's walkable ones (both schemes)."""
    space = SearchSpace.from_layers(quantizer.layers, ("uniform", "pot"), (8, 7, 6, 5, 4, 3, 2), "layer", target)
    options = [space.start, *space.candidates()]
    return {layer.name: options[i % len(options)] for i, layer in enumerate(quantizer.layers)}


@pytest.mark.parametrize("name", [n for n in TARGETS.names() if n != "any"])
def test_integer_reference_forward_answers_as_the_search_measured(name, reference, digits_data, tmp_path):
    target = TARGETS[name]
    model = reference.build()
    quantizer = LayerQuantizer(model, target=target)
    assignment = mixed_assignment(quantizer, target)
    with quantizer.applied(assignment) as quantized:
        expected = logits(quantized.eval(), digits_data.test)
    path = save_for_target(tmp_path / f"model.{name}.npz", model, assignment, target)
    rebuilt, read, recorded = load_for_target(path)
    assert read == assignment and recorded == name
    assert torch.equal(logits(rebuilt, digits_data.test), expected)  # so the same answers, image by image

    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(archive["header"].tobytes())
        for layer in header["layers"]:
            codes = archive[f"weights/{layer['name']}"]
            assert codes.dtype == np.int8  # every profile's containers are at most 8 bits
            limit = 2 ** (target.code_width(layer["scheme"], layer["bits"]) - 1)
            assert np.abs(codes).max() < limit  # the code fits its signed width
            if target.scale.power_of_two:
                assert archive[f"weight_exp/{layer['name']}"].shape == (1,)
            else:
                per = layer["rows"][1] - layer["rows"][0] if target.scale.per == "channel" else 1
                assert archive[f"scales/{layer['name']}"].shape == (per,)
        assert any(k.startswith("neurons/") for k in archive.files)


def test_a_chip_export_needs_every_layer_and_refuses_foreign_files(reference, tmp_path):
    model = reference.build()
    target = TARGETS["speck"]
    first = LayerQuantizer(model).layers[0].name
    with pytest.raises(AqsvitError, match="has no assignment; a chip holds no fp32 layer"):
        save_for_target(tmp_path / "x.npz", model, {first: ("uniform", 8)}, target)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(AqsvitError, match="not an aqsvit chip export"):
        load_for_target(tmp_path / "other.npz")
