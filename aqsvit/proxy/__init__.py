"""Membrane-potential capture, FP reference cache, drift, threshold calibration, staged evaluation.

Knows nothing of Optuna: usable from a notebook on any spikingjelly model.
"""
from aqsvit.proxy.capture import Capture, capture, lif_layers
from aqsvit.proxy.drift import DEFINITIONS, DriftStep, DriftTotals, drift, drift_steps, register_definition
from aqsvit.proxy.reference import FPReference, get_reference

__all__ = ["DEFINITIONS", "Capture", "DriftStep", "DriftTotals", "FPReference", "capture", "drift", "drift_steps",
           "get_reference", "lif_layers", "register_definition"]
