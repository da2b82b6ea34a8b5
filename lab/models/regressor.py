"""DeepPose-style baseline (Toshev & Szegedy 2014): regress the 28 normalised
coordinates directly, loss = sum_k |y_hat_k - y_k|^2 over labelled joints.

Normalised coordinates: y = x / S - 0.5, so the crop spans [-0.5, 0.5].
"""
from __future__ import annotations

import torch
import torch.nn as nn

from lab.config import RegressorConfig
from lab.models.detector import conv_block


class Regressor(nn.Module):
    """Crop (B, 3, S, S) in [0, 1] -> normalised coordinates (B, K, 2)."""

    def __init__(self, cfg: RegressorConfig):
        super().__init__()
        self.cfg = cfg
        # Downsample early (stride-2 5x5 + pool), then (depth - 2) conv+pool stages.
        layers, cin = [conv_block(3, cfg.width, k=5, stride=2), nn.MaxPool2d(2)], cfg.width
        for i in range(cfg.depth - 2):
            cout = cfg.width * min(2 ** (i + 1), 4)
            layers += [conv_block(cin, cout), conv_block(cout, cout), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(cin * 16, cfg.hidden), nn.ReLU(inplace=True), nn.Dropout(0.3),
            nn.Linear(cfg.hidden, cfg.joints * 2))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.features((x - self.mean) / self.std))
        return y.view(-1, self.cfg.joints, 2)


def normalise(xy: torch.Tensor, size: int) -> torch.Tensor:
    return xy / size - 0.5


def denormalise(y: torch.Tensor, size: int) -> torch.Tensor:
    return (y + 0.5) * size
