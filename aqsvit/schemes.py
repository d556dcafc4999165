"""The quantization choices every part shares: the schemes and the bit widths they allow. No torch
here: the search space (and so the stepwise samplers) reads them without importing the quantizers."""
SCHEMES = ("uniform", "pot", "fp32")
MIN_BITS, MAX_BITS = 2, 8
