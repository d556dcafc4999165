# The README's two commands: `make run` (the main job) and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.aqsvit-installed

.PHONY: run test chaos faults bench gpu-check

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# torch pinned in the same command: 2.13.0 is the CPU wheel here; an open range pulls CUDA (GBs).
	$(VENV)/bin/pip install -q "torch==2.13.0" -e ".[test]"
	# sinabs only for its Speck discretization (tests/report/test_vendor_toolchains.py), without its
	# dependencies: it pins nir<=1.0.4 (ours is newer) and samna, a stub that downloads SynSense's binary
	$(VENV)/bin/pip install -q --no-deps "sinabs==3.1.3"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/aqsvit search

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -ra --durations=25

chaos: $(STAMP)
	$(VENV)/bin/python -m pytest -q -s -m 'chaos or slow' tests/chaos

# the fault-injection record (benchmarks/results/faults.md): every case 10 times
faults: $(STAMP)
	AQSVIT_FAULT_REPEAT=10 $(VENV)/bin/python -m pytest -q -s -ra tests/chaos/test_faults.py

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/proxy.py

# on a machine with a CUDA GPU: the CUDA tests and the GPU rows of benchmarks/results/scale.md
gpu-check: $(STAMP)
	bash benchmarks/gpu_check.sh
