"""Export the chosen assignment (versioned JSON) and a deployable packed quantized model.

The packed file (``.aqsv``) holds each quantized layer's integer codes at their bit width, one FP32
scale per output channel, and everything else of the state dict as FP32; a zlib-compressed JSON
header describes it. No pickle: loading runs no code. :func:`load_packed` rebuilds the model with
exactly the weights the search evaluated, so it reproduces the reported accuracy exactly.

Codes: uniform b-bit stores ``round(w / s) + (2^(b-1) - 1)`` (unsigned, b bits); power-of-two
stores a sign bit above a (b-1)-bit exponent code, 0 for zero and ``k + 1`` for ``a * 2^-k``.
"""
from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aqsvit.errors import AqsvitError
from aqsvit.hardware import ANY, HardwareTarget
from aqsvit.models import ModelSpec, create_model
from aqsvit.models.records import recorded_spec
from aqsvit.quant import LayerQuantizer
from aqsvit.quant.quantizers import pot_exponents, uniform_levels
from aqsvit.report.chip_export import load_for_target, save_for_target

ASSIGNMENT_FORMAT = "aqsvit-assignment/1"
PACKED_MAGIC = b"AQSV1\n"


def assignment_json(spec: ModelSpec, assignment: Mapping[str, tuple[str, int]], metrics: Mapping[str, float]) -> str:
    """The chosen assignment with the model it applies to and its measured figures."""
    return json.dumps({
        "format": ASSIGNMENT_FORMAT, "model": spec.record(),
        "assignment": {k: {"scheme": s, "bits": b} for k, (s, b) in assignment.items()},
        "metrics": dict(metrics)}, indent=2)


def read_assignment(path: str | Path, *, target: str | None = None) -> tuple[ModelSpec, dict[str, tuple[str, int]]]:
    """Load an assignment JSON written by :func:`assignment_json`; a model from outside the
    registry only when ``target`` names the builder it records (:mod:`aqsvit.models.records`)."""
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or data.get("format") != ASSIGNMENT_FORMAT:
            raise ValueError
        assignment = {str(k): (str(v["scheme"]), int(v["bits"])) for k, v in data["assignment"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AqsvitError(f"assignment {path}: not an aqsvit assignment file ({ASSIGNMENT_FORMAT})") from exc
    return recorded_spec(data.get("model"), f"assignment {path}", target), assignment


def _codes(w: torch.Tensor, scheme: str, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Unsigned integer codes (< 2^bits) and per-channel scales of one weight block."""
    if scheme == "uniform":
        scale, level = uniform_levels(w, bits)
        q = level + 2 ** (bits - 1) - 1
        return q.to(torch.int64).flatten().numpy(), scale.flatten().numpy().astype(np.float32)
    scale, k = pot_exponents(w, bits)
    code = torch.where(k >= 0, k + 1, torch.zeros_like(k)).to(torch.int64)
    sign = (w < 0).to(torch.int64) * (code > 0)
    return (sign << (bits - 1) | code).flatten().numpy(), scale.flatten().numpy().astype(np.float32)


def _decode(codes: np.ndarray, scale: np.ndarray, scheme: str, bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    c = torch.as_tensor(codes.astype(np.int64)).reshape(shape)
    s = torch.as_tensor(scale.copy()).reshape(-1, *([1] * (len(shape) - 1)))
    if scheme == "uniform":
        qmax = 2 ** (bits - 1) - 1
        return (c - qmax).to(torch.float32) * s
    code = c & ((1 << (bits - 1)) - 1)
    sign = torch.where((c >> (bits - 1)) & 1 == 1, -1.0, 1.0)
    k = (code - 1).to(torch.float32)
    return torch.where(code > 0, sign * s * torch.exp2(-k), torch.zeros_like(k))


def _pack(values: np.ndarray, bits: int) -> bytes:
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    return np.packbits(((values[:, None] >> shifts) & 1).astype(np.uint8).ravel()).tobytes()


def _unpack(blob: bytes, bits: int, count: int) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(blob, dtype=np.uint8))[: count * bits].reshape(count, bits).astype(np.int64)
    return flat @ (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))


def save_packed(path: str | Path, model: nn.Module, assignment: Mapping[str, tuple[str, int]],
                split_qkv: bool = True) -> Path:
    """Write ``model`` (full precision) quantized by ``assignment`` in packed form."""
    quantizer = LayerQuantizer(model, split_qkv=split_qkv)
    quantized_modules = set()
    layers, blobs, offset = [], [], 0
    for layer in quantizer.layers:
        scheme, bits = assignment.get(layer.name, ("fp32", 32))
        if scheme == "fp32":
            continue
        w = quantizer.fp_weight(layer)
        codes, scale = _codes(w, scheme, bits)
        packed, scales = _pack(codes, bits), scale.tobytes()
        layers.append({"name": layer.name, "module": layer.module_name, "rows": [layer.out_start, layer.out_stop],
                       "shape": list(w.shape), "scheme": scheme, "bits": bits, "offset": offset,
                       "codes": len(packed), "scales": len(scales)})
        blobs += [packed, scales]
        offset += len(packed) + len(scales)
        quantized_modules.add(layer.module_name)
    rest = []
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            continue
        module = name.rsplit(".", 1)[0]
        rows = [l for l in layers if l["module"] == module]
        if name.endswith(".weight") and module in quantized_modules:
            covered = sum(r["rows"][1] - r["rows"][0] for r in rows)
            if covered == tensor.shape[0]:
                continue
            keep = np.ones(tensor.shape[0], bool)
            for r in rows:
                keep[r["rows"][0]:r["rows"][1]] = False
            data = tensor.detach().cpu().numpy()[keep].astype(np.float32).tobytes()
            rest.append({"name": name, "shape": list(tensor.shape), "rows": np.nonzero(keep)[0].tolist(),
                         "offset": offset, "bytes": len(data)})
        else:
            data = tensor.detach().cpu().numpy().astype(np.float32).tobytes()
            rest.append({"name": name, "shape": list(tensor.shape), "offset": offset, "bytes": len(data)})
        blobs.append(data)
        offset += len(data)
    header = zlib.compress(json.dumps({"model": model.spec.record(),
                                       "layers": layers, "rest": rest}, separators=(",", ":")).encode(), 9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(PACKED_MAGIC + struct.pack("<I", len(header)) + header)
        for blob in blobs:
            f.write(blob)
    return path


def load_packed(path: str | Path, model: nn.Module | None = None, *,
                target: str | None = None) -> tuple[nn.Module, dict[str, tuple[str, int]]]:
    """Rebuild the quantized model (eval mode) and its assignment from a packed file; into
    ``model`` when given (a model handed to :func:`aqsvit.quantize` as it was, not a registered one).
    A recorded model from outside the registry is built only when ``target`` names the builder it
    records (:mod:`aqsvit.models.records`)."""
    raw = Path(path).read_bytes()
    start = len(PACKED_MAGIC) + 4
    try:
        if not raw.startswith(PACKED_MAGIC):
            raise ValueError
        size = struct.unpack("<I", raw[len(PACKED_MAGIC):start])[0]
        header = json.loads(zlib.decompress(raw[start:start + size]))
        if not isinstance(header, dict):
            raise ValueError
    except (ValueError, struct.error, zlib.error) as exc:
        raise AqsvitError(f"packed model {path}: not an aqsvit packed model") from exc
    body = memoryview(raw)[start + size:]
    if model is None:
        model = create_model(recorded_spec(header.get("model"), f"packed model {path}", target))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for item in header["rest"]:
        values = torch.from_numpy(np.frombuffer(body[item["offset"]:item["offset"] + item["bytes"]], np.float32).copy())
        if "rows" in item:
            state[item["name"]][item["rows"]] = values.reshape(len(item["rows"]), *item["shape"][1:])
        else:
            state[item["name"]] = values.reshape(item["shape"])
    assignment = {}
    for layer in header["layers"]:
        o, n_codes, bits = layer["offset"], layer["codes"], layer["bits"]
        count = int(np.prod(layer["shape"]))
        codes = _unpack(bytes(body[o:o + n_codes]), bits, count)
        scale = np.frombuffer(body[o + n_codes:o + n_codes + layer["scales"]], np.float32)
        w = _decode(codes, scale, layer["scheme"], bits, tuple(layer["shape"]))
        a, b = layer["rows"]
        state[layer["module"] + ".weight"][a:b] = w
        assignment[layer["name"]] = (layer["scheme"], bits)
    model.load_state_dict(state)
    return model.eval(), assignment



def save_model(folder: str | Path, model: nn.Module, assignment: Mapping[str, tuple[str, int]],
               target: HardwareTarget = ANY, split_qkv: bool = True) -> Path:
    """The quantized model as its target takes it: ``model.aqsv`` (packed codes, per-channel FP32
    scales) for ``any``, else ``model.<target>.npz``, the chip export (:mod:`aqsvit.report.chip_export`)."""
    folder = Path(folder)
    if target.name == "any":
        return save_packed(folder / "model.aqsv", model, assignment, split_qkv=split_qkv)
    return save_for_target(folder / f"model.{target.name}.npz", model, assignment, target, split_qkv=split_qkv)


def load_model(path: str | Path, model: nn.Module) -> nn.Module:
    """The quantized model a :func:`save_model` file holds, rebuilt into ``model`` (eval mode)."""
    if Path(path).suffix == ".aqsv":
        return load_packed(path, model)[0]
    return load_for_target(path, model)[0]
