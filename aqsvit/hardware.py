"""Hardware targets: what a chip stores, so that the search proposes only what loads there and
counts memory as the chip counts it.

A :class:`HardwareTarget` says which code widths each scheme may take, how wide the container is
that a code of each width occupies, and the form of the scales (one per output channel or one per
layer; a free float or a power of two; how many bits each). ``any`` is the paper's figure: every
width 2..8, codes packed bit for bit, one FP32 scale per output channel.

On an integer target a power-of-two code is stored as the integer it stands for: ``b`` bits code
``sign * a * 2^-k`` with ``k <= 2^(b-1) - 2``, i.e. ``sign * 2^(kmax - k)`` times the scale
``a * 2^-kmax``, a signed integer of ``2^(b-1)`` bits (3-bit codes fit a 4-bit container, 4-bit
codes an 8-bit one, 5-bit codes need 16 bits).

Example:
    .. code-block:: python

        from aqsvit.hardware import TARGETS
        loihi = TARGETS["loihi2"]
        loihi.holds("uniform", 7), loihi.holds("pot", 5)   # (True, False)
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from aqsvit.registry import Registry

CHANNEL, LAYER = "channel", "layer"  # one scale per output channel, or one per layer


@dataclass(frozen=True)
class ScaleForm:
    """How a layer's scales are stored: ``per`` output channel or per layer, free floats or powers
    of two (an exponent; the chip shifts instead of multiplying), and the bits of each.

    ``full_range``: uniform codes span the whole two's-complement range ``-2^(b-1) .. 2^(b-1) - 1``
    (the step is the larger of ``max(w) / (2^(b-1) - 1)`` and ``-min(w) / 2^(b-1)``, as sinabs
    discretizes for Speck), not the symmetric ``±(2^(b-1) - 1)``."""

    per: str = CHANNEL
    power_of_two: bool = False
    bits: int = 32
    full_range: bool = False

    def count(self, out_channels: int) -> int:
        """Scales a layer of ``out_channels`` output channels stores."""
        return out_channels if self.per == CHANNEL else 1


@dataclass(frozen=True)
class HardwareTarget:
    """What one chip or kernel family stores (see the module docstring).

    ``widths``: scheme -> the code widths it takes. ``containers``: the storage widths a code is
    rounded up to (``None``: packed bit for bit). ``integer``: codes are stored as the signed
    integers they stand for (a power-of-two code takes its integer's width)."""

    name: str
    widths: Mapping[str, tuple[int, ...]]
    scale: ScaleForm = field(default_factory=ScaleForm)
    containers: tuple[int, ...] | None = None
    integer: bool = False
    source: str = ""  # where each limit is published

    def code_width(self, scheme: str, bits: int) -> int:
        """Bits a code needs before its container: ``bits``, or on an integer target the signed
        integer width of a power-of-two code (``2^(bits-1)``)."""
        if scheme == "pot" and self.integer:
            return 2 ** (bits - 1)
        return bits

    def stored_bits(self, scheme: str, bits: int) -> int:
        """Bits one weight occupies in memory (fp32: 32)."""
        if scheme == "fp32":
            return 32
        need = self.code_width(scheme, bits)
        if self.containers is None:
            return need
        return next((c for c in sorted(self.containers) if c >= need), need)

    def holds(self, scheme: str, bits: int) -> bool:
        """Whether this target can store a ``scheme`` code of ``bits`` bits."""
        if scheme == "fp32":
            return "fp32" in self.widths
        if bits not in self.widths.get(scheme, ()):
            return False
        need = self.code_width(scheme, bits)
        return self.containers is None or any(c >= need for c in self.containers)

    def layer_bytes(self, numel: int, out_channels: int, scheme: str, bits: int) -> int:
        """Bytes of one layer as stored: codes in their containers (rounded up to whole bytes per
        layer) and the scales in their form; fp32 layers 4 bytes a weight."""
        if scheme == "fp32":
            return numel * 4
        codes = math.ceil(numel * self.stored_bits(scheme, bits) / 8)
        return codes + math.ceil(self.scale.count(out_channels) * self.scale.bits / 8)

    def describe(self) -> str:
        """One line for reports and the resume fingerprint."""
        widths = "; ".join(f"{s} {','.join(map(str, w))}" for s, w in self.widths.items())
        store = "packed" if self.containers is None else "containers " + ",".join(map(str, self.containers))
        scale = f"{'pot ' if self.scale.power_of_two else ''}{self.scale.bits}-bit scale per {self.scale.per}"
        if self.scale.full_range:
            scale += ", full two's-complement range"
        return f"{self.name} ({widths}; {store}; {scale})"


TARGETS: Registry[HardwareTarget] = Registry("target", "a HardwareTarget", lambda obj: isinstance(obj, HardwareTarget))
ANY_WIDTHS = (2, 3, 4, 5, 6, 7, 8)


def register_target(target: HardwareTarget) -> HardwareTarget:
    """Add ``target`` under its name (``target=<name>`` on the command line); the registry refuses
    anything else in one line."""
    return TARGETS.register(str(getattr(target, "name", target)))(target)


ANY = register_target(HardwareTarget(
    "any", {"uniform": ANY_WIDTHS, "pot": ANY_WIDTHS, "fp32": (32,)},
    source="none: the figure of the mixed-precision literature (codes packed bit for bit, FP32 scale per channel)"))

register_target(HardwareTarget(
    "int_bytes", {"uniform": ANY_WIDTHS, "pot": (2, 3, 4)}, containers=(2, 4, 8), integer=True,
    source="integer kernels: TFLite's quantization spec (int8 weights, per-axis float32 scales, "
           "tensorflow.org/lite/performance/quantization_spec); CMSIS-NN packs two int4 in a byte "
           "(ARM-software/CMSIS-NN Include/arm_nnfunctions.h); PyTorch quint4x2 and quint2x4 pack 4 and 2 "
           "bits to byte boundaries. A 3-bit code takes 4 bits, a 5- to 7-bit code 8."))

register_target(HardwareTarget(
    "loihi2", {"uniform": ANY_WIDTHS, "pot": (2, 3, 4)}, containers=ANY_WIDTHS, integer=True,
    scale=ScaleForm(LAYER, power_of_two=True, bits=8),
    source="Intel Loihi 2 through Lava: Dense/Conv hold one shared weight_exp (base 2) and one "
           "num_weight_bits per process, signed integer weights of at most 8 bits "
           "(lava-nc/lava src/lava/proc/dense/process.py, src/lava/utils/weightutils.py). The scale is one "
           "power-of-two exponent per layer, counted as one byte with its width field. Every width 1..8 is "
           "stored at its own precision; Lava does not restrict it (the hardware check is closed source)."))

register_target(HardwareTarget(
    "loihi1", {"uniform": ANY_WIDTHS, "pot": (2, 3, 4)}, containers=(2, 3, 4, 5, 6, 8), integer=True,
    scale=ScaleForm(LAYER, power_of_two=True, bits=8),
    source="Intel Loihi 1 synapse formats: weight bits 1, 2, 3, 4, 5, 6 or 8, not 7 "
           "(nengo/nengo-loihi nengo_loihi/block.py WEIGHT_BITS_MAP; a 7-bit code is stored at 8), one weight "
           "exponent per synapse config (-7..7, nengo_loihi/builder/validate.py)."))

register_target(HardwareTarget(
    "speck", {"uniform": ANY_WIDTHS, "pot": (2, 3, 4)}, containers=(8,), integer=True,
    scale=ScaleForm(LAYER, bits=0, full_range=True),
    source="SynSense Speck (DynapCNN): 8-bit signed kernel weights, 16-bit neuron state; sinabs "
           "discretizes each layer with one float scale applied to weights, biases and thresholds alike, "
           "so the scale is folded into the thresholds and not stored, and its codes use the whole int8 range "
           "(-128 when the negative extreme dominates; determine_discretization_scale in synsense/sinabs "
           "sinabs/backend/dynapcnn/discretize.py, sinabs/docs/speck/overview.md)."))

register_target(HardwareTarget(
    "xylo", {"uniform": ANY_WIDTHS, "pot": (2, 3, 4)}, containers=(8,), integer=True,
    scale=ScaleForm(CHANNEL, bits=0),
    source="SynSense Xylo: 8-bit input, recurrent and readout weights (rockpool/docs/devices/xylo-overview); "
           "rockpool's channel_quantize scales each target neuron's incoming weights and folds the scale "
           "into that neuron's integer threshold, so no scale is stored "
           "(synsense/rockpool rockpool/transform/quantize_methods.py)."))

register_target(HardwareTarget(
    "akida", {"uniform": ANY_WIDTHS, "pot": (2, 3, 4)}, containers=(4, 8), integer=True,
    scale=ScaleForm(CHANNEL, bits=8),
    source="BrainChip Akida 2.0: Conv2D, DepthwiseConv2D and Dense1D weights of 4 or 8 bits "
           "(akida_examples doc/user_guide/hardware/2.0.rst; narrower codes are stored in those); quantizeml quantizes weights per output "
           "channel and folds input, weight and output scales into one output scale vector of 8-bit "
           "fixed point (quantizeml layers/quantizers/weight_quantizer.py, output_quantizer.py)."))
