"""Run in a venv with quantizeml (no aqsvit): quantize the weights an akida export makes the chip
compute with (integer codes times per-channel scales) with quantizeml's WeightQuantizer at each
layer's width, per output channel, and compare its integer values with the export's codes.

    python akida_compare.py <model.akida.npz> <report.md>
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import version

import numpy as np
from quantizeml.layers.quantizers import WeightQuantizer


def main() -> None:
    path, report = sys.argv[1], sys.argv[2]
    rows, equal = [], 0
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(archive["header"].tobytes())
        for layer in header["layers"]:
            codes = archive[f"weights/{layer['name']}"].astype(np.int64)
            scales = archive[f"scales/{layer['name']}"].astype(np.float32)
            flat = codes.reshape(codes.shape[0], -1)
            weights = flat.astype(np.float32) * scales.reshape(-1, 1)
            # Keras keeps the output channels last; quantizeml scales per channel along axis -1
            quantized = WeightQuantizer(bitwidth=layer["bits"], axis=-1)(weights.T)
            theirs = np.round(quantized.values.numpy()).astype(np.int64).T
            same = bool(np.array_equal(theirs, flat))
            equal += same
            rows.append(f"| {layer['name']} | {layer['scheme']}{layer['bits']} | {layer['container_bits']} | "
                        f"{'equal' if same else 'DIFFERENT: max |diff| %d' % np.abs(theirs - flat).max()} |")
    text = ["# The akida export against BrainChip's quantizeml", "",
            f"Command: `bash benchmarks/vendor/akida.sh` (quantizeml {version('quantizeml')}, TensorFlow "
            f"{version('tensorflow')}). quantizeml's `WeightQuantizer(bitwidth=b, axis=-1)` quantizes the weights "
            "the export makes the chip compute with (codes x per-channel scales) per output channel; its integer "
            f"values against the export's codes: {equal} of {len(rows)} layers equal.", "",
            "| layer | code | container bits | quantizeml |", "|---|---|---|---|", *rows, ""]
    with open(report, "w") as f:
        f.write("\n".join(text))
    print("\n".join(text))
    sys.exit(0 if equal == len(rows) else 1)


if __name__ == "__main__":
    main()
