"""Batched prediction on crops: heatmaps -> crop-pixel coordinates.

Shared by validation during training, `pose-lab eval` and the app.
"""
from __future__ import annotations

import torch

from lab.data.targets import decode, heatmap_to_crop
from lab.joints import FLIP_PERM
from lab.models.detector import STRIDE
from lab.models.pose import PoseNet
from lab.models.regressor import Regressor, denormalise


def to_input(images_u8: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) uint8 -> float in [0, 1]."""
    return images_u8.float() / 255.0


@torch.no_grad()
def heatmaps(model: PoseNet, x: torch.Tensor, flip: bool = False) -> dict:
    """Unary and log-marginal maps for a batch; with `flip`, averaged with the mirrored crop."""
    out = model(x)
    if flip:
        fo = model(x.flip(-1))
        for k in list(out):
            out[k] = 0.5 * (out[k] + fo[k].flip(-1)[:, list(FLIP_PERM)])
    return out


@torch.no_grad()
def predict_pose(model: PoseNet, images_u8: torch.Tensor, batch: int = 64, flip: bool = False,
                 device: str = "cpu") -> dict:
    """Crop-pixel joints (N, K, 2) and peak confidences (N, K) from the unary
    and, when the model has one, from the spatial model's marginal."""
    model.eval()
    res: dict[str, list] = {}
    for i in range(0, len(images_u8), batch):
        out = heatmaps(model, to_input(images_u8[i:i + batch].to(device)), flip)
        for name, key, log in (("unary", "unary", False), ("marginal", "log_marginal", True)):
            if key not in out:
                continue
            xy, conf = decode(out[key].float(), log_space=log)
            if log:
                conf = marginal_confidence(out[key].float())
            res.setdefault(name, []).append(heatmap_to_crop(xy, STRIDE).cpu())
            res.setdefault(name + "_conf", []).append(conf.cpu())
    return {k: torch.cat(v) for k, v in res.items()}


def marginal_confidence(log_marginal: torch.Tensor) -> torch.Tensor:
    """Share of the marginal's mass at its peak pixel (B, K): comparable across joints."""
    p = torch.softmax(log_marginal.flatten(2), -1)
    return p.max(-1).values


@torch.no_grad()
def predict_regressor(model: Regressor, images_u8: torch.Tensor, batch: int = 128,
                      device: str = "cpu") -> torch.Tensor:
    """Crop-pixel joints (N, K, 2)."""
    model.eval()
    S = images_u8.shape[-1]
    outs = [denormalise(model(to_input(images_u8[i:i + batch].to(device))), S).cpu()
            for i in range(0, len(images_u8), batch)]
    return torch.cat(outs)
