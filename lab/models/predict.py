"""Batched prediction on crops: heatmaps -> crop-pixel joints. The one forward pass that
validation during training, `pose-lab eval` and the app all use."""
from __future__ import annotations

import torch

from lab.data.codec import HeatmapCodec
from lab.data.transforms import zoom
from lab.joints import FLIP_PERM
from lab.models.pose import PoseNet
from lab.models.regressor import Regressor, denormalise
from lab.progress import track


def to_input(images_u8: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) uint8 -> float in [0, 1]."""
    return images_u8.float() / 255.0


def flip_maps(maps: torch.Tensor) -> torch.Tensor:
    """Maps (B, K, H, W) of a mirrored crop, mirrored back with left and right swapped."""
    return maps.flip(-1)[:, list(FLIP_PERM)]


@torch.no_grad()
def heatmaps(model: PoseNet, x: torch.Tensor, flip: bool = False, off: tuple[int, ...] = (),
             scales: tuple[float, ...] = (1.0,), detect=None) -> dict:
    """{"unary", "log_marginal", "marginal"} for a batch x (B, 3, S, S).

    With `flip`, the unary is averaged with the mirrored crop's unary once, and the
    marginal is derived from that averaged unary, so the two stay consistent. With several
    `scales` (multi-scale testing) the crop is also seen zoomed by each factor about its
    centre, each unary zoomed back, and all are averaged before the spatial model. Banks
    listed in `off` are switched off (their features zeroed). `detect`, when given, computes
    the unary instead of the PyTorch detector (the app's ONNX engine, `lab.models.engine`);
    with banks switched off the PyTorch detector always runs.
    """
    def unary_of(t):                                                       # (B, K, H, W)
        if detect is not None and not off:
            return detect(t)
        return model.detector.inspect(t, off)["unary"]

    unaries = []
    for s in scales:
        xs = zoom(x, s)
        u = unary_of(xs)
        if flip:
            u = 0.5 * (u + flip_maps(unary_of(xs.flip(-1))))
        unaries.append(zoom(u, 1 / s))
    unary = torch.stack(unaries).mean(0) if len(unaries) > 1 else unaries[0]
    return model.from_unary(unary.float())


@torch.no_grad()
def predict_pose(model: PoseNet, images_u8: torch.Tensor, codec: HeatmapCodec, batch: int = 64,
                 flip: bool = False, device: str = "cpu", off: tuple[int, ...] = (),
                 scales: tuple[float, ...] = (1.0,)) -> dict:
    """Crop-pixel joints (N, K, 2) and peak confidences (N, K) from the unary
    and, when the model has one, from the spatial model's marginal (`heatmaps` for flip
    and multi-scale testing)."""
    model.eval()
    res: dict[str, list] = {}
    for i in track(range(0, len(images_u8), batch), "predict", unit="batches"):
        out = heatmaps(model, to_input(images_u8[i:i + batch].to(device)), flip, off, scales)
        for name, v in decode(model, out, codec).items():
            res.setdefault(name, []).append(v.cpu())
    return {k: torch.cat(v) for k, v in res.items()}


def decode(model: PoseNet, out: dict, codec: HeatmapCodec) -> dict:
    """`heatmaps` outputs -> {"unary", "marginal"}: crop-pixel joints (B, K, 2), and their
    "_conf" peak confidences (B, K). Log-space maps report their peak's softmax share."""
    res = {}
    for name, key, log in (("unary", "unary", model.unary_is_log), ("marginal", "log_marginal", True)):
        if key not in out:
            continue
        xy, conf = codec.decode_crop(out[key].float(), log_space=log)
        res[name], res[name + "_conf"] = xy, peak_share(out[key].float()) if log else conf
    return res


def peak_share(log_maps: torch.Tensor) -> torch.Tensor:
    """Share of a map's softmax mass at its peak pixel (B, K): comparable across joints."""
    p = torch.softmax(log_maps.flatten(2), -1)
    return p.max(-1).values


@torch.no_grad()
def predict_regressor(model: Regressor, images_u8: torch.Tensor, batch: int = 128,
                      device: str = "cpu") -> torch.Tensor:
    """Crop-pixel joints (N, K, 2)."""
    model.eval()
    S = images_u8.shape[-1]
    outs = [denormalise(model(to_input(images_u8[i:i + batch].to(device))).float(), S).cpu()
            for i in track(range(0, len(images_u8), batch), "predict", unit="batches")]
    return torch.cat(outs)
