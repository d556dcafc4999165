#!/usr/bin/env bash
# The akida export against BrainChip's own weight quantizer (quantizeml's WeightQuantizer), in a
# throwaway virtual environment: quantizeml needs TensorFlow (about 1 GB), too heavy for `make test`.
#
#   bash benchmarks/vendor/akida.sh            # VENDOR_VENV=/tmp/aqsvit-quantizeml by default
#
# 1. .venv (aqsvit) exports the digits model for target=akida with every layer a held uniform code
#    (8 and 4 bits, and the narrower ones stored in those containers);
# 2. the vendor venv (numpy, quantizeml; no aqsvit, no torch) quantizes the weights the export makes
#    the chip compute with (codes times scales) with quantizeml at each layer's width and checks that
#    it returns exactly our integer codes. Writes benchmarks/results/vendor_akida.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENDOR_VENV=${VENDOR_VENV:-/tmp/aqsvit-quantizeml}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python benchmarks/vendor/export_for_vendor.py akida "$work/model.akida.npz"
if [ ! -x "$VENDOR_VENV/bin/python" ]; then
  python3 -m venv "$VENDOR_VENV"
  "$VENDOR_VENV/bin/pip" install -q --upgrade pip
  "$VENDOR_VENV/bin/pip" install -q "quantizeml==1.2.5"  # and TensorFlow 2.19 through tf_keras
fi
"$VENDOR_VENV/bin/python" benchmarks/vendor/akida_compare.py "$work/model.akida.npz" benchmarks/results/vendor_akida.md
