"""What a browser run shows of its model: after every epoch a heatmap of one validation
image (`live_heatmap`, saved as live.png; the validation loss next to the training loss
comes from the loop's own validation, `lab.train.loop.validate`); and, to put a run next
to the shipped model, PCK@0.2 of any pose checkpoint on a cache split (`val_pck`)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lab.colors import colorize
from lab.errors import LabError
from lab.train.runs.settings import open_cache


@torch.no_grad()
def live_heatmap(model, image: np.ndarray) -> dict:
    """One crop (S, S, 3) uint8 through a pose model: every joint's map (the marginal when
    the model has a spatial model, else the unary), their maximum over joints divided by
    the picture's brightest value `top` (one scale for all joints; a target peaks at 1,
    so `top` says how confident the model is), upsampled and blended over the crop in the
    lab's heatmap colours (lab.colors)."""
    from lab.models.detector import BELIEF_OF_LOSS, belief
    from lab.models.predict import heatmaps, to_input
    was_training = model.training
    model.eval()
    try:
        x = to_input(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None])
        out = heatmaps(model, x.to(next(model.parameters()).device))
        key = "marginal" if "marginal" in out else "unary"
        maps = out["marginal"][0] if key == "marginal" else \
            belief(out["unary"][0], BELIEF_OF_LOSS[model.detector.cfg.loss])
        maps = maps.float().clamp_min(0).cpu()
    finally:
        model.train(was_training)
    top = float(maps.max())
    peak = (maps.max(0).values / max(top, 1e-12)).numpy()   # one scale for the whole picture
    S = image.shape[0]
    from PIL import Image
    up = np.asarray(Image.fromarray(peak.astype(np.float32)).resize((S, S), Image.BILINEAR))
    heat = colorize(up).astype(float)
    a = (0.15 + 0.7 * up)[..., None]
    blend = (image.astype(float) * (1 - a) + heat * a).astype(np.uint8)
    return {"kind": key, "maps": maps.numpy(), "top": top, "overlay": blend}


def live_caption(live: dict) -> str:
    """What the validation image next to the curves shows, and how to read its brightness."""
    if live["kind"] == "marginal":
        return (f"One validation image after epoch {live['epoch']}: the marginal (detector + spatial model) of "
                f"every joint, scaled so that its brightest pixel is white (value {live['top']:.3g}). A marginal "
                "is a product of messages: its height is not on the unary's scale, so read its shape, not "
                "its value.")
    return (f"One validation image after epoch {live['epoch']}: the detector's unary of every joint, scaled so "
            f"that its brightest pixel is white (value {live['top']:.2f}; the unary is trained towards 1 at a "
            "joint, so this says how sure the detector is).")


def save_png(path: Path, rgb: np.ndarray, scale: int = 2) -> None:
    """rgb, scaled up `scale` times, as a PNG written to a temporary name and renamed."""
    from PIL import Image
    img = Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG")
    tmp.replace(path)


def val_pck(model_path: Path, cache: str | os.PathLike = "mini", split: str = "val", limit: int = 0) -> dict:
    """PCK@0.2 on a cache split (crop pixels) of a pose checkpoint: {"unary": ..., "marginal": ...}.
    The Retrain page uses it to put a run and the shipped model side by side on the same images."""
    from lab.data.codec import HeatmapCodec
    from lab.eval.pck import pck
    from lab.models import io
    from lab.models.predict import predict_pose
    model, meta = io.load(Path(model_path))
    if meta.get("kind") != "pose":
        raise LabError(f"{model_path} is a {meta.get('kind')!r} checkpoint, not a pose model.")
    c = open_cache(cache)[split]
    c = c.subset(limit) if limit else c
    images, coords, lab = c.tensors()
    pred = predict_pose(model, images, HeatmapCodec.from_config(meta.get("data", {})))
    return {k: pck(p.numpy(), coords.numpy(), lab.numpy())["mean"]
            for k, p in pred.items() if not k.endswith("_conf")}
