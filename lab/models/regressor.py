"""DeepPose-style baseline (Toshev & Szegedy 2014): regress the 28 normalised
coordinates directly.

Normalised coordinates, as in DeepPose: y = (x - box centre) / box side, so the
crop spans [-0.5, 0.5]: y = x / S - 0.5 for a crop of side S.

The regressor runs the same resolution banks as the part detector (same trunk,
same input, same combined features, `lab.models.detector.Banks`); only the head
differs: strided convolutions, then fully connected layers to (K, 2) numbers
instead of a 1x1 convolution to K heatmaps. Heatmaps vs coordinates is then the
only difference between the two models.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from lab.config import RegressorConfig
from lab.models.detector import Banks, conv_block


class Regressor(nn.Module):
    """Crop (B, 3, S, S) in [0, 1] -> normalised coordinates (B, K, 2)."""

    def __init__(self, cfg: RegressorConfig):
        super().__init__()
        self.cfg = cfg
        self.features = Banks(cfg.features)
        c = self.features.channels
        self.head = nn.Sequential(                              # (B, C, S/4, S/4)
            conv_block(c, 128, stride=2), conv_block(128, 128, stride=2),   # (B, 128, S/16, S/16)
            conv_block(128, 32, k=1), nn.AdaptiveAvgPool2d(8), nn.Flatten(),  # (B, 32 * 8 * 8)
            nn.Linear(32 * 8 * 8, cfg.hidden), nn.ReLU(inplace=True), nn.Dropout(0.2),
            nn.Linear(cfg.hidden, cfg.joints * 2))
        nn.init.zeros_(self.head[-1].weight)                    # start at the centre of the crop
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.features(x)["combined"])
        return y.view(-1, self.cfg.joints, 2)

    def load_imagenet(self) -> None:
        from lab.models import trunk
        if self.features.trunk is not None:
            trunk.load_imagenet(self.features.trunk)


def normalise(xy: torch.Tensor, size: int) -> torch.Tensor:
    return xy / size - 0.5


def denormalise(y: torch.Tensor, size: int) -> torch.Tensor:
    return (y + 0.5) * size
