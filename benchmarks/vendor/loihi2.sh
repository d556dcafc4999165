#!/usr/bin/env bash
# The loihi2 export against Intel's Lava (lava-nc), in a throwaway virtual environment: lava-nc
# needs Python 3.10 (PY310: a python3.10, e.g. pyenv's), not ours.
#
#   bash benchmarks/vendor/loihi2.sh            # VENDOR_VENV=/tmp/aqsvit-lava by default
#
# 1. .venv (aqsvit) exports the digits model for target=loihi2, every layer a held code (uniform
#    8..2 bits and power-of-two 4..2 bits in turn);
# 2. the vendor venv (numpy, lava-nc; no aqsvit, no torch) gives each layer's integer codes to
#    lava.utils.weightutils.optimize_weight_bits (what Lava's Dense and Conv processes store) and
#    checks that Lava holds them losslessly in at most the bits our memory count gives the layer.
#    Writes benchmarks/results/vendor_loihi2.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENDOR_VENV=${VENDOR_VENV:-/tmp/aqsvit-lava}
find_python310() {  # PY310, python3.10 on PATH, or pyenv's: the first that runs as 3.10
  local candidate
  for candidate in "${PY310:-}" python3.10 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python benchmarks/vendor/export_for_vendor.py loihi2 "$work/model.loihi2.npz" uniform pot
if [ ! -x "$VENDOR_VENV/bin/python" ]; then
  python310=$(find_python310)
  if [ -z "$python310" ]; then echo "loihi2.sh: lava-nc needs Python 3.10; set PY310 to a python3.10" >&2; exit 2; fi
  "$python310" -m venv "$VENDOR_VENV"
  "$VENDOR_VENV/bin/pip" install -q --upgrade pip
  "$VENDOR_VENV/bin/pip" install -q "lava-nc==0.10.0"
fi
"$VENDOR_VENV/bin/python" benchmarks/vendor/lava_compare.py "$work/model.loihi2.npz" benchmarks/results/vendor_loihi2.md
