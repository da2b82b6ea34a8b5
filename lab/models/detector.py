"""The multi-resolution part detector (paper section 3.1).

The crop is fed to several *resolution banks* at full, half (and optionally
quarter) resolution. Each bank is a stack of conv + BN + ReLU with pooling and
ends at 1/4 of its own input. The coarse banks' features are upsampled to the
fine bank's size and combined; further (dilated) convolutions produce K = 14
*unary* heatmaps at stride 4 of the input.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab.config import DetectorConfig

STRIDE = 4


def conv_block(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, norm: bool = True):
    pad = dilation * (k - 1) // 2
    layers = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Bank(nn.Module):
    """One resolution bank: (B, 3, s, s) -> (B, width, s/4, s/4)."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        w = cfg.width
        layers = [conv_block(3, w // 2, k=5, stride=2, norm=cfg.norm), nn.MaxPool2d(2)]
        cin = w // 2
        for _ in range(cfg.bank_depth - 1):
            layers.append(conv_block(cin, w, norm=cfg.norm))
            cin = w
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class PartDetector(nn.Module):
    """Crop (B, 3, S, S) in [0, 1] -> unary heatmaps (B, K, S/4, S/4)."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.cfg = cfg
        self.banks = nn.ModuleList(Bank(cfg) for _ in range(cfg.banks))
        cin = cfg.width * cfg.banks if cfg.combine == "concat" else cfg.width
        head = [conv_block(cin, cfg.head_width, k=1, norm=cfg.norm)]
        for i in range(cfg.head_depth):
            head.append(conv_block(cfg.head_width, cfg.head_width, dilation=2 ** i, norm=cfg.norm))
        self.head = nn.Sequential(*head)
        self.unary = nn.Conv2d(cfg.head_width, cfg.joints, 1)
        # Start from (almost) all-zero heatmaps: with the default init the first
        # hundreds of steps only learn to cancel large random outputs.
        nn.init.normal_(self.unary.weight, std=1e-3)
        nn.init.zeros_(self.unary.bias)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def bank_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The crop at full, half (, quarter) resolution: [(B, 3, S, S), (B, 3, S/2, S/2), ...]."""
        return [x if i == 0 else F.avg_pool2d(x, 2 ** i) for i in range(self.cfg.banks)]

    def inspect(self, x: torch.Tensor) -> dict:
        """Every stage the app shows: bank inputs, bank features, combined features, unary."""
        inputs = self.bank_inputs(x)
        feats = [bank((inp - self.mean) / self.std) for bank, inp in zip(self.banks, inputs)]
        size = feats[0].shape[-2:]
        up = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=False)
              for f in feats]                                   # each (B, width, S/4, S/4)
        combined = torch.cat(up, 1) if self.cfg.combine == "concat" else torch.stack(up).sum(0)
        unary = self.unary(self.head(combined))                 # (B, K, S/4, S/4)
        return {"inputs": inputs, "banks": feats, "combined": combined, "unary": unary}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inspect(x)["unary"]


def strongest_channels(features: torch.Tensor, n: int) -> list[int]:
    """Indices of the `n` channels of one feature stack (C, H, W) with the largest mean
    activation, strongest first (ties by index): what a bank responds to most in this crop."""
    mean = features.detach().float().flatten(1).mean(1)
    order = sorted(range(len(mean)), key=lambda c: (-float(mean[c]), c))
    return order[:max(0, min(n, len(order)))]
