"""Export the digits model for a hardware target with every layer a held code of the given schemes,
cycling through the target's widths: the file a vendor's own code is then checked against.

    .venv/bin/python benchmarks/vendor/export_for_vendor.py <target> <out.npz> [scheme ...]   # uniform
"""
from __future__ import annotations

import sys

import aqsvit  # noqa: F401
from aqsvit.data import load_dataset
from aqsvit.hardware import TARGETS
from aqsvit.models import model_spec
from aqsvit.quant import LayerQuantizer
from aqsvit.report.chip_export import save_for_target
from aqsvit.training import get_reference


def main() -> None:
    target, out, schemes = TARGETS[sys.argv[1]], sys.argv[2], sys.argv[3:] or ["uniform"]
    spec = model_spec("spikformer_digits")
    reference = get_reference(spec, load_dataset("digits", spec.input_shape, seed=0), root="studies/checkpoints",
                              progress=False, seed=0)
    model = reference.build()
    codes = [(scheme, b) for scheme in schemes for b in sorted(target.widths.get(scheme, ()), reverse=True)
             if target.holds(scheme, b)]
    layers = LayerQuantizer(model, target=target).layers
    assignment = {layer.name: codes[i % len(codes)] for i, layer in enumerate(layers)}
    save_for_target(out, model, assignment, target)
    print(f"{out}: {len(layers)} layers, codes {codes}, reference sha256 {reference.sha256[:12]}")


if __name__ == "__main__":
    main()
