"""Run in a venv with lava-nc (no aqsvit): give each layer's integer codes of a loihi2 export to
Lava's ``optimize_weight_bits`` (the weights, ``num_weight_bits`` and ``weight_exp`` its Dense and
Conv processes hold) and check that Lava holds them losslessly (its stored weights shifted by its
``w_scale`` are the codes times one power of two per layer) in at most the bits our memory count
gives them (the header's ``container_bits``; Lava's ``num_weight_bits`` includes the sign of
mixed-sign weights, as its Dense process documents).

    python lava_compare.py <model.loihi2.npz> <report.md>
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import version

import numpy as np
from lava.utils.weightutils import SignMode, determine_sign_mode, optimize_weight_bits


def main() -> None:
    path, report = sys.argv[1], sys.argv[2]
    rows, good = [], 0
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(archive["header"].tobytes())
        for layer in header["layers"]:
            codes = archive[f"weights/{layer['name']}"].astype(np.int64)
            codes = codes.reshape(codes.shape[0], -1)
            mode = determine_sign_mode(codes)
            optimized = optimize_weight_bits(codes.copy(), mode, loihi2=True)
            mixed = int(mode == SignMode.MIXED)
            w_scale = 8 - optimized.num_weight_bits + optimized.weight_exp + mixed  # Lava's Dense: weights << w_scale
            held = optimized.weights.astype(np.int64) * 2.0 ** w_scale
            nonzero = codes != 0
            ratios = np.unique(held[nonzero] / codes[nonzero])
            lossless = bool(np.array_equal(held == 0, codes == 0) and (
                not nonzero.any() or (len(ratios) == 1 and np.log2(ratios[0]) == round(np.log2(ratios[0])))))
            ok = lossless and optimized.num_weight_bits <= layer["container_bits"]
            good += ok
            rows.append(f"| {layer['name']} | {layer['scheme']}{layer['bits']} | {layer['container_bits']} | "
                        f"{optimized.num_weight_bits} | {optimized.weight_exp} | {mode.name.lower()} | "
                        f"{'yes' if lossless else 'NO'} | {'ok' if ok else 'NOT OK'} |")
    text = ["# The loihi2 export against Intel's Lava", "",
            f"Command: `bash benchmarks/vendor/loihi2.sh` (lava-nc {version('lava-nc')}). Each layer's integer codes "
            "given to `lava.utils.weightutils.optimize_weight_bits(codes, sign_mode, loihi2=True)`: 'lossless' when "
            "Lava's stored weights shifted by its `w_scale` (8 - num_weight_bits + weight_exp + 1 if mixed sign) are "
            "the codes times one power of two (an all-zero layer: all zero); 'bits' ok when Lava's num_weight_bits "
            "(the sign included for mixed signs) is at most "
            f"what our memory count gives a code of the layer. {good} of {len(rows)} layers ok.", "",
            "| layer | code | our bits | Lava num_weight_bits | Lava weight_exp | sign | lossless | bits |",
            "|---|---|---|---|---|---|---|---|", *rows, ""]
    with open(report, "w") as f:
        f.write("\n".join(text))
    print("\n".join(text))
    sys.exit(0 if good == len(rows) else 1)


if __name__ == "__main__":
    main()
