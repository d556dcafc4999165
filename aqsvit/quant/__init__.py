"""Quantizers, applying an assignment, and memory/bits/energy accounting. Knows nothing of Optuna."""
from aqsvit.quant.accounting import SizeReport, inference_state_numel, layer_bytes, size_report
from aqsvit.quant.apply import FP32, Assignment, LayerQuantizer, uniform_assignment, validate_assignment
from aqsvit.quant.fake import FakeQuantWeight, fake_quantized
from aqsvit.quant.energy import LayerActivity, energy_pj, measure_activity, op_energy
from aqsvit.quant.layers import QuantLayer, quantizable_layers
from aqsvit.quant.quantizers import MAX_BITS, MIN_BITS, SCHEMES, pot, quantize, uniform

__all__ = [
    "FP32", "FakeQuantWeight", "MAX_BITS", "MIN_BITS", "SCHEMES", "Assignment", "LayerActivity", "LayerQuantizer",
    "QuantLayer", "SizeReport", "energy_pj", "fake_quantized", "inference_state_numel", "layer_bytes",
    "measure_activity", "op_energy", "pot", "quantizable_layers", "quantize", "size_report",
    "uniform", "uniform_assignment", "validate_assignment",
]
