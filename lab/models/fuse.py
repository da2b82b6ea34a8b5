"""Inference-only speed-up: fold every BatchNorm into the convolution before it.

In eval mode BatchNorm is an affine map per channel, y = gamma (x - mu) / sqrt(var + eps) + beta,
so conv followed by BN is one conv with rescaled weights and a new bias:

    W' = W * gamma / sqrt(var + eps),   b' = (b - mu) * gamma / sqrt(var + eps) + beta

The folded model computes the same function (to float round-off) with one pass over each
feature map fewer. It can no longer be trained (the BN layers are gone), so only the app's
predictor (`lab.infer.PoseLab`) and the latency benchmark fold; training and `pose-lab eval`
run the model as saved.
"""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each (Conv2d, BatchNorm2d) pair that follows each other in an nn.Sequential, in
    place; the BN becomes nn.Identity. Returns `model` (in eval mode)."""
    model.eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)       # keeps the conv's class (SameConv)
                seq._modules[b] = nn.Identity()
    return model


def count_batchnorm(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
