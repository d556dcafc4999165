"""A small spiking CNN: spikingjelly Conv2d + BN + LIF stages in an nn.Sequential, no attention."""
from __future__ import annotations

import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn


class ConvStage(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = layer.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = layer.BatchNorm2d(cout)
        self.lif = neuron.LIFNode(tau=2.0, detach_reset=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(self.bn(self.conv(x)))


class SpikingCNN(nn.Module):
    """Images [N, C, H, W] repeated over T steps (multi-step mode) to class scores [N, classes]."""

    def __init__(self, in_channels: int, img_size: int, width: int, classes: int, T: int) -> None:
        super().__init__()
        self.T = T
        self.stages = nn.Sequential(ConvStage(in_channels, width), ConvStage(width, width), ConvStage(width, width))
        self.pool = layer.AdaptiveAvgPool2d(1)
        self.classifier = layer.Linear(width, classes)
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        y = self.pool(self.stages(x_seq)).flatten(2)
        return self.classifier(y).mean(0)


def spiking_cnn(in_channels: int = 1, img_size: int = 8, width: int = 16, classes: int = 10, T: int = 2) -> SpikingCNN:
    """Builder: its arguments say the input shape (in_channels, img_size)."""
    return SpikingCNN(in_channels, img_size, width, classes, T)
