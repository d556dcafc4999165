"""Quantize your own spiking model: any nn.Module, aqsvit's Python API (docs/guides/quantize-your-model.md shows this file)."""
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

import aqsvit
from aqsvit.data import load_dataset


class SpikingCNN(nn.Module):
    """Two Conv2d + LIF stages over T=2 steps: images [N, 1, 8, 8] -> class scores [N, 10]."""

    def __init__(self, width: int = 16, T: int = 2) -> None:
        super().__init__()
        self.T = T
        self.features = nn.Sequential(
            layer.Conv2d(1, width, 3, padding=1), layer.BatchNorm2d(width), neuron.LIFNode(detach_reset=True),
            layer.Conv2d(width, width, 3, padding=1), layer.BatchNorm2d(width), neuron.LIFNode(detach_reset=True),
            layer.AvgPool2d(2), layer.Flatten())
        self.classifier = layer.Linear(width * 4 * 4, 10)
        functional.set_step_mode(self, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1))).mean(0)


data = load_dataset("digits", (1, 8, 8), seed=0)  # train, calibration and test splits of 8x8 digits
torch.manual_seed(0)
model = SpikingCNN()
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
for epoch in range(8):  # your own training, as you have it
    for x, y in torch.utils.data.DataLoader(data.train, batch_size=64, shuffle=True):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        functional.reset_net(model)

result = aqsvit.quantize(model.eval(), calibration=data.calib, evaluation=data.test, delta=1.0,
                         sampler="greedy", storage="sqlite:///quantize_your_model.db")
print(f"FP {result.fp_accuracy:.2f}%, quantized {result.accuracy:.2f}% (drop {result.drop:.2f}), "
      f"{result.effective_bits:.2f} effective bits, {result.compression:.2f}x smaller")
result.export("model.aqsv")  # the packed model; result.apply(model) quantizes the weights in place
