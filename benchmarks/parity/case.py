"""What one parity check runs: a published model's reference code beside aqsvit's model.

A definition module per architecture (``spikformer.py``, ...) lists its ``CASES``; ``run.py`` fetches
the reference code, runs it in a throwaway venv (``reference_driver.py``) and compares.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    """One row of the parity table.

    ``build`` is a Python expression evaluated in the venv with the reference module as ``ref``
    (and ``torch``, ``nn``, ``partial``); ``forward`` computes the logits from ``model`` and ``x``.
    ``patches`` are text substitutions applied to the fetched reference files (only for what takes
    no part in the eval forward, or ``backend='cupy'`` -> ``'torch'``). ``save`` names the dict its
    training script saves: ``timm`` (timm's CheckpointSaver), ``torchvision`` (the torchvision
    reference scripts' ``{"model": ..., "args": ...}``) or ``mae`` (MAE's ``misc.save_model``)."""

    label: str                    # e.g. "Spikformer CIFAR-10"
    config: str                   # e.g. "4-384, T=4"
    repo: str                     # owner/name, also the --source key
    files: tuple[str, ...]        # paths (files or folders) to take from the repository
    module: str                   # the reference model file, e.g. "cifar10/model.py"
    build: str
    model: str                    # aqsvit's registered name
    input_shape: tuple[int, ...]  # one input, as aqsvit's model takes it
    images: int = 8
    kwargs: dict = field(default_factory=dict)   # aqsvit builder overrides matching ``build``
    forward: str = "model(x)"
    head: str = "head"            # the reference's classifier (nn.Linear), spread over the inputs
    save: str = "timm"
    events: bool = False          # inputs are event counts (non-negative integers), not images
    patches: tuple[tuple[str, str], ...] = (("backend='cupy'", "backend='torch'"),)

    @property
    def input_label(self) -> str:
        dims = self.input_shape
        return (f"{dims[0]} frames x {dims[1]}x{dims[2]}x{dims[3]}" if self.events
                else f"{dims[0]}x{dims[1]}x{dims[2]}") + f", {self.images} inputs"
