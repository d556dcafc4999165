#!/usr/bin/env bash
# The prepared GPU check: on a machine with a CUDA GPU, in under 8 minutes (sized by estimate for an
# H100; no session has had a GPU to time it yet):
#   1. the CUDA tests (pytest -m cuda),
#   2. benchmarks/scale.py --device cuda, one worker, at a size that fits that time,
#   3. the same with a 2-worker search sharing the GPU (one journal-file study),
# the benchmarks writing their rows into benchmarks/results/scale.md (each keeps the others' rows).
#
#   bash benchmarks/gpu_check.sh                                  # on a GPU machine (make gpu-check)
#   bash benchmarks/gpu_check.sh --device cpu --out /tmp/dry      # the CPU dry run CI makes: tiny sizes
#
# PYTHON=<python with aqsvit installed> skips setting up .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda
out=benchmarks/results
while [ $# -gt 0 ]; do
  case $1 in
    --device) device=${2:-}; shift 2 ;;
    --out) out=${2:-}; shift 2 ;;
    *) echo "gpu_check.sh: $1: unknown option; allowed: --device cuda|cpu, --out DIR" >&2; exit 2 ;;
  esac
done
case $device in
  cuda) size=(--images 2000 --candidates 2) ;;
  cpu) size=(--images 32 --depths 1 --embed-dims 48 --img-size 16 --candidates 1 --threads 1) ;;
  *) echo "gpu_check.sh: --device: got '$device'; allowed: cuda, cpu" >&2; exit 2 ;;
esac
if [ -z "${PYTHON:-}" ]; then
  make -s .venv/.aqsvit-installed
  PYTHON=.venv/bin/python
fi
started=$SECONDS
echo "== CUDA tests (on a machine without CUDA every one skips)"
"$PYTHON" -m pytest -q -rs -m cuda -p no:cacheprovider tests
for workers in 1 2; do
  echo "== benchmarks/scale.py on $device, $workers worker(s)"
  "$PYTHON" benchmarks/scale.py --device "$device" "${size[@]}" --workers "$workers" --out "$out"
done
echo "gpu check: $((SECONDS - started)) s; rows in $out/scale.md"
