"""The multi-resolution part detector (paper section 3.1).

The crop is fed to several *resolution banks* at full, half (and optionally
quarter) resolution. Each bank ends at 1/4 of its own input. The coarse banks'
features are upsampled to the fine bank's size and combined; further (dilated)
convolutions produce K = 14 *unary* heatmaps at stride 4 of the input.

Two kinds of bank (`DetectorConfig.trunk`):

  "scratch"  as in the paper: each bank is its own stack of conv + BN + ReLU + pool,
             trained from random weights on the pose data alone;
  "lite0"    every bank runs one shared ImageNet-pretrained trunk (EfficientNet-Lite0,
             `lab.models.trunk`) on its resolution, and its own small top-down decoder
             merges the trunk's stride-16, 8 and 4 features back to 1/4 of its input;
  "lite1"    the same with EfficientNet-Lite1's deeper trunk.

`Banks` (bank inputs -> combined features) is shared with the DeepPose-style
regressor, so the two models see the same features and differ only in their head.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab.config import DetectorConfig
from lab.models import trunk as lite

BANK_STRIDE = 4     # every bank ends at 1/4 of its own input


def conv_block(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, norm: bool = True):
    pad = dilation * (k - 1) // 2
    layers = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ScratchBank(nn.Module):
    """One resolution bank trained from scratch: (B, 3, s, s) -> (B, width, s/4, s/4)."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        w = cfg.width
        layers = [conv_block(3, w // 2, k=5, stride=2, norm=cfg.norm), nn.MaxPool2d(2)]
        cin = w // 2
        for _ in range(cfg.bank_depth - 1):
            layers.append(conv_block(cin, w, norm=cfg.norm))
            cin = w
        self.layers = nn.Sequential(*layers)

    def forward(self, x, trunk=None):
        return self.layers(x)


class TrunkBank(nn.Module):
    """One resolution bank on the shared pretrained trunk: (B, 3, s, s) -> (B, width, s/4, s/4).

    Top-down decoder: y16 = L16(f16); y8 = up(y16) + L8(f8); y4 = up(y8) + L4(f4), where
    f_s are the trunk's features at stride s and L_s are 1x1 convolutions; then a 3x3 conv.
    With `trunk_stride` 32 the decoder starts one level deeper: y32 = L32(f32), y16 = up(y32) + ...
    """

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        w = cfg.width
        strides = lite.strides_up_to(cfg.trunk_stride)
        self.lateral = nn.ModuleDict({str(s): nn.Conv2d(lite.CHANNELS[s], w, 1) for s in strides})
        self.smooth = conv_block(w, w, norm=cfg.norm)

    def forward(self, x, trunk):
        f = trunk(x)                                            # {4: (B,24,s/4,s/4), 8: .., 16: .. (, 32: ..)}
        y = None
        for s in sorted(f, reverse=True):                       # 16, 8, 4
            lat = self.lateral[str(s)](f[s])
            y = lat if y is None else lat + F.interpolate(y, size=lat.shape[-2:], mode="nearest")
        return self.smooth(y)                                   # (B, width, s/4, s/4)


class Banks(nn.Module):
    """Crop (B, 3, S, S) in [0, 1] -> every bank's input and features, and their combination."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.cfg = cfg
        if lite.is_lite(cfg.trunk):
            self.trunk = lite.Trunk(lite.blocks_for(cfg.trunk_stride, cfg.trunk), cfg.trunk)
            self.trunk.freeze(cfg.freeze_blocks)
            bank, mean, std = TrunkBank, lite.MEAN, lite.STD
        elif cfg.trunk == "scratch":
            self.trunk = None
            bank, mean, std = ScratchBank, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        else:
            raise ValueError(f"unknown trunk {cfg.trunk!r}: use 'scratch', 'lite0' or 'lite1'")
        self.banks = nn.ModuleList(bank(cfg) for _ in range(cfg.banks))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    @property
    def channels(self) -> int:
        return self.cfg.width * (self.cfg.banks if self.cfg.combine == "concat" else 1)

    def bank_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The crop at full, half (, quarter) resolution: [(B, 3, S, S), (B, 3, S/2, S/2), ...]."""
        return [x if i == 0 else F.avg_pool2d(x, 2 ** i) for i in range(self.cfg.banks)]

    def forward(self, x: torch.Tensor, off: tuple[int, ...] = ()) -> dict:
        """{"inputs", "banks": [(B, width, s/4, s/4)], "combined": (B, C, S/4, S/4)}.

        Banks listed in `off` are switched off: their features are zeroed (an ablation).
        """
        inputs = self.bank_inputs(x)
        feats = [bank((inp - self.mean) / self.std, self.trunk) for bank, inp in zip(self.banks, inputs)]
        feats = [f * 0 if i in off else f for i, f in enumerate(feats)]
        size = feats[0].shape[-2:]
        up = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=False)
              for f in feats]                                   # each (B, width, S/4, S/4)
        combined = torch.cat(up, 1) if self.cfg.combine == "concat" else torch.stack(up).sum(0)
        return {"inputs": inputs, "banks": feats, "combined": combined}

    def train(self, mode: bool = True):
        """The pretrained trunk keeps its ImageNet BatchNorm statistics (small batches, and
        banks at several resolutions would mix them); its affine weights still learn."""
        super().train(mode)
        if self.trunk is not None:
            for m in self.trunk.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):    # SyncBatchNorm too
                    m.eval()
        return self


class PartDetector(nn.Module):
    """Crop (B, 3, S, S) in [0, 1] -> unary heatmaps (B, K, S/4, S/4)."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.cfg = cfg
        self.features = Banks(cfg)
        head = [conv_block(self.features.channels, cfg.head_width, k=1, norm=cfg.norm)]
        for i in range(cfg.head_depth):
            head.append(conv_block(cfg.head_width, cfg.head_width, dilation=2 ** i, norm=cfg.norm))
        self.head = nn.Sequential(*head)
        self.unary = nn.Conv2d(cfg.head_width, cfg.joints, 1)
        # Start from (almost) all-zero heatmaps: with the default init the first
        # hundreds of steps only learn to cancel large random outputs.
        nn.init.normal_(self.unary.weight, std=1e-3)
        nn.init.zeros_(self.unary.bias)

    def bank_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.features.bank_inputs(x)

    def inspect(self, x: torch.Tensor, off: tuple[int, ...] = ()) -> dict:
        """Every stage the app shows: bank inputs, bank features, combined features, unary."""
        out = self.features(x, off)
        out["unary"] = self.unary(self.head(out["combined"]))  # (B, K, S/4, S/4)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inspect(x)["unary"]

    def load_imagenet(self) -> None:
        """Start the shared trunk from its ImageNet weights (training only)."""
        if self.features.trunk is not None:
            lite.load_imagenet(self.features.trunk)


# What a message convolves, per detector loss: the paper's MSE-trained unary is a score
# (negatives clipped), a softmax-trained unary holds logits of a distribution over pixels.
BELIEF_OF_LOSS = {"mse": "relu", "softmax": "softmax"}


def belief(unary: torch.Tensor, kind: str) -> torch.Tensor:
    """The unary (..., K, H, W) as evidence >= 0: ReLU(unary) ("relu") or, per joint, the
    softmax over the map's pixels ("softmax"), which sums to 1."""
    if unary.dtype not in (torch.float32, torch.float64):
        unary = unary.float()                        # bf16 under autocast: keep the sums exact enough
    if kind == "softmax":
        return torch.softmax(unary.flatten(-2), -1).view(unary.shape)
    return torch.relu(unary)


def strongest_channels(features: torch.Tensor, n: int) -> list[int]:
    """Indices of the `n` channels of one feature stack (C, H, W) with the largest mean
    activation, strongest first (ties by index): what a bank responds to most in this crop."""
    mean = features.detach().float().flatten(1).mean(1)
    order = sorted(range(len(mean)), key=lambda c: (-float(mean[c]), c))
    return order[:max(0, min(n, len(order)))]
