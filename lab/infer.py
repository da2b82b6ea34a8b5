"""From a photo to poses: framing, cropping, and the three predictors.

The app and `pose-lab eval` both go through here, so a learner sees exactly
what was evaluated. Nothing here trains; see lab.train.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lab.data.targets import decode, heatmap_to_crop
from lab.data.transforms import box_affine, crop_image, image_box, invert_affine, apply_affine
from lab.errors import LabError
from lab.eval.predict import heatmaps, marginal_confidence, to_input
from lab.models import io
from lab.models.detector import STRIDE
from lab.models.regressor import denormalise

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"
POSE_WEIGHTS = PRETRAINED / "pose.safetensors"
REGRESSOR_WEIGHTS = PRETRAINED / "regressor.safetensors"
METHODS = ("unary", "spatial", "regressor")
METHOD_LABELS = {"unary": "Detector alone", "spatial": "Detector + spatial model",
                 "regressor": "Regressor (DeepPose-style)"}


@dataclass
class Prediction:
    """Everything one photo produced. Joints are in original-image pixels (K, 2)."""
    box: tuple[float, float, float]            # (cx, cy, side) of the square crop
    affine: np.ndarray                         # (2, 3) original -> crop
    crop: np.ndarray                           # (S, S, 3) uint8
    unary: torch.Tensor                        # (K, H, W)
    log_marginal: torch.Tensor | None          # (K, H, W)
    joints: dict = field(default_factory=dict)       # method -> (K, 2) original px
    confidence: dict = field(default_factory=dict)   # method -> (K,)

    def crop_joints(self, method: str) -> np.ndarray:
        return apply_affine(self.affine, self.joints[method])


class PoseLab:
    """The detector + spatial model and the regressor, loaded once."""

    def __init__(self, pose_path: Path = POSE_WEIGHTS, regressor_path: Path | None = REGRESSOR_WEIGHTS):
        self.pose, self.pose_meta = io.load(pose_path)
        self.data = io.data_config(self.pose_meta)
        self.regressor, self.regressor_meta = (None, None)
        if regressor_path is not None and Path(regressor_path).is_file():
            self.regressor, self.regressor_meta = io.load(regressor_path)
        self.size = self.data.crop_size

    @property
    def spatial(self):
        return self.pose.spatial

    def crop(self, rgb: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
        A = box_affine(box, self.size)
        return crop_image(rgb, A, self.size), A

    def tensor(self, crop: np.ndarray) -> torch.Tensor:
        """(S, S, 3) uint8 -> (1, 3, S, S) float in [0, 1]."""
        return to_input(torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None])

    @torch.no_grad()
    def predict(self, rgb: np.ndarray, box=None, flip: bool = False) -> Prediction:
        """Run all predictors on the crop `box` (default: framed automatically)."""
        box = box or self.auto_box(rgb)
        crop, A = self.crop(rgb, box)
        x = self.tensor(crop)
        out = heatmaps(self.pose, x, flip)
        pred = Prediction(box, A, crop, out["unary"][0], out.get("log_marginal", [None])[0])
        back = invert_affine(A)
        xy, conf = decode(out["unary"])
        pred.joints["unary"] = apply_affine(back, heatmap_to_crop(xy, STRIDE)[0].numpy())
        pred.confidence["unary"] = conf[0].numpy()
        if "log_marginal" in out:
            xy, _ = decode(out["log_marginal"], log_space=True)
            pred.joints["spatial"] = apply_affine(back, heatmap_to_crop(xy, STRIDE)[0].numpy())
            pred.confidence["spatial"] = marginal_confidence(out["log_marginal"])[0].numpy()
        if self.regressor is not None:
            y = denormalise(self.regressor(x), self.size)[0].numpy()
            pred.joints["regressor"] = apply_affine(back, y)
            pred.confidence["regressor"] = np.full(len(y), np.nan)
        return pred

    def auto_box(self, rgb: np.ndarray, margin: float | None = None) -> tuple[float, float, float]:
        """Frame the person without annotation, in two passes.

        Pass 1 runs on the whole photo padded to a square; the box is then fitted
        around the joints it finds with the training margin, and kept only if it
        is plausible (not tiny, mostly inside the photo). The model assumes one
        person roughly centred, as the paper did.
        """
        h, w = rgb.shape[:2]
        whole = image_box(w, h)
        first = self.predict(rgb, whole)
        method = "spatial" if "spatial" in first.joints else "unary"
        pts = first.joints[method]
        margin = self.data.margin if margin is None else margin
        lo, hi = pts.min(0), pts.max(0)
        side = float((hi - lo).max()) * (1 + margin)
        if side < 0.25 * whole[2]:
            return whole
        cx, cy = (lo + hi) / 2
        return float(cx), float(cy), min(side, whole[2] * 1.2)


def load_lab(pose_path=POSE_WEIGHTS, regressor_path=REGRESSOR_WEIGHTS) -> PoseLab:
    if not Path(pose_path).is_file():
        raise LabError(f"no detector weights at {pose_path}: train some (pose-lab train) or restore pretrained/.")
    return PoseLab(Path(pose_path), regressor_path)
