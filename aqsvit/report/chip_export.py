"""Export for a hardware target: what its toolchain takes, in a NumPy archive (no pickle).

Per quantized layer the signed integer codes in the container's integer type
(``weights/<layer>``), and its scales in the target's form: ``weight_exp/<layer>`` (int8 powers of
two, Lava's shared weight exponent) or ``scales/<layer>`` (float32, per output channel or one per
layer). Every other floating tensor of the state dict in ``state/<name>`` (float32), each spiking
neuron's parameters in ``neurons/<module>`` (the fields the header names), and a JSON header
(``header``) with the model record, the target and the assignment.

:func:`load_for_target` is the integer reference forward's model: weights rebuilt as codes times
scales, as the chip computes them; it reproduces the search's evaluated accuracy exactly.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based.neuron import BaseNode
from torch import nn

from aqsvit.errors import AqsvitError
from aqsvit.models import create_model
from aqsvit.models.records import recorded_spec
from aqsvit.quant import LayerQuantizer
from aqsvit.quant.apply import validate_assignment
from aqsvit.hardware import HardwareTarget
from aqsvit.quant.integer import dequantize, integer_codes, scale_exponent

CHIP_FORMAT = "aqsvit-chip/1"
NEURON_FIELDS = ("tau", "v_threshold", "v_reset", "decay_input")  # NaN where a neuron has none (hard reset: v_reset)


def _container_dtype(bits: int) -> np.dtype:
    return np.dtype(np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32)


def _neuron_values(node: BaseNode) -> list[float]:
    values = []
    for field in NEURON_FIELDS:
        value = getattr(node, field, None)
        values.append(float("nan") if value is None else float(value))
    return values


def save_for_target(path: str | Path, model: nn.Module, assignment: Mapping[str, tuple[str, int]],
                    target: HardwareTarget, split_qkv: bool = True) -> Path:
    """Write ``model`` (full precision) quantized by ``assignment`` as ``target`` stores it."""
    quantizer = LayerQuantizer(model, split_qkv=split_qkv, target=target)
    validate_assignment(assignment, quantizer.layers, target)
    missing = [layer.name for layer in quantizer.layers if layer.name not in assignment]
    if missing:
        raise AqsvitError(f"export for target {target.name}: layer {missing[0]} has no assignment; "
                          "a chip holds no fp32 layer")
    arrays: dict[str, np.ndarray] = {}
    layers, covered = [], {}
    for layer in quantizer.layers:
        scheme, bits = assignment[layer.name]
        codes, scale = integer_codes(quantizer.fp_weight(layer), scheme, bits, target)
        stored = target.stored_bits(scheme, bits)
        arrays[f"weights/{layer.name}"] = codes.numpy().astype(_container_dtype(stored))
        if target.scale.power_of_two:
            arrays[f"weight_exp/{layer.name}"] = scale_exponent(scale).numpy().astype(np.int8).ravel()
        else:
            arrays[f"scales/{layer.name}"] = scale.numpy().astype(np.float32).ravel()
        layers.append({"name": layer.name, "module": layer.module_name, "rows": [layer.out_start, layer.out_stop],
                       "scheme": scheme, "bits": bits, "container_bits": stored})
        covered[layer.module_name] = covered.get(layer.module_name, 0) + layer.out_channels
    for name, tensor in model.state_dict().items():
        module = name.rsplit(".", 1)[0]
        if not tensor.is_floating_point() or (name.endswith(".weight") and covered.get(module) == tensor.shape[0]):
            continue
        arrays[f"state/{name}"] = tensor.detach().cpu().numpy().astype(np.float32)
    neurons = {name: m for name, m in model.named_modules() if isinstance(m, BaseNode)}
    for name, node in neurons.items():
        arrays[f"neurons/{name}"] = np.array(_neuron_values(node), np.float32)
    spec = getattr(model, "spec", None)
    header = {"format": CHIP_FORMAT, "target": target.name, "target_profile": target.describe(),
              "model": spec.record() if spec is not None else None, "layers": layers,
              "neuron_fields": list(NEURON_FIELDS)}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # a file object: np.savez would append .npz to another suffix
        np.savez(f, **arrays)
    return path


def load_for_target(path: str | Path, model: nn.Module | None = None, *,
                    target: str | None = None) -> tuple[nn.Module, dict[str, tuple[str, int]], str]:
    """The model (eval mode) with weights rebuilt from the integer codes times their scales, its
    assignment and the hardware target's name; into ``model`` when given. ``target`` names the
    builder of a recorded model from outside the registry (:mod:`aqsvit.models.records`)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        header = json.loads(arrays.pop("header").tobytes())
        if not isinstance(header, dict) or header.get("format") != CHIP_FORMAT:
            raise ValueError
    except (OSError, ValueError, KeyError) as exc:
        raise AqsvitError(f"chip export {path}: not an aqsvit chip export ({CHIP_FORMAT})") from exc
    if model is None:
        model = create_model(recorded_spec(header.get("model"), f"chip export {path}", target))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key, value in arrays.items():
        if key.startswith("state/"):
            state[key[len("state/"):]] = torch.from_numpy(value.copy())
    assignment = {}
    for layer in header["layers"]:
        codes = torch.from_numpy(arrays[f"weights/{layer['name']}"].astype(np.int32))
        shape = [-1] + [1] * (codes.ndim - 1)
        if f"weight_exp/{layer['name']}" in arrays:
            scale = torch.exp2(torch.from_numpy(arrays[f"weight_exp/{layer['name']}"].astype(np.float32)))
        else:
            scale = torch.from_numpy(arrays[f"scales/{layer['name']}"].copy())
        a, b = layer["rows"]
        state[layer["module"] + ".weight"][a:b] = dequantize(codes, scale.reshape(shape))
        assignment[layer["name"]] = (layer["scheme"], int(layer["bits"]))
    model.load_state_dict(state)
    return model.eval(), assignment, str(header["target"])
