"""From a photo to poses: framing, cropping, and the three predictors.

The app goes through here, with the same forward pass (`lab.models.predict`) and
heatmap codec (`lab.data.codec`) that `pose-lab eval` uses, so a learner sees
what was evaluated: `predict` runs the detector's and the regressor's layers through
ONNX Runtime (`lab.models.engine`, about 2x faster on a CPU), the same function to float
round-off. Nothing here trains (see `lab.train`); the lab's
explanations built on these outputs live in `lab.analysis`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lab.data.transforms import apply_affine, box_affine, crop_image, image_box, invert_affine
from lab.errors import LabError
from lab.models import io
from lab.models.detector import BELIEF_OF_LOSS, belief
from lab.models.engine import compile_module
from lab.models.fuse import fold_batchnorm
from lab.models.predict import heatmaps, peak_share, to_input
from lab.models.regressor import denormalise
from lab.names import METHODS
from lab.resources import PRETRAINED  # noqa: E402  (the package's weights, installed or in a checkout)

POSE_WEIGHTS = PRETRAINED / "pose.safetensors"
SCRATCH_WEIGHTS = PRETRAINED / "scratch.safetensors"
FULL_WEIGHTS = PRETRAINED / "pose_full.safetensors"     # the same detector, a fully connected graph
REGRESSOR_WEIGHTS = PRETRAINED / "regressor.safetensors"

__all__ = ["METHODS", "PoseLab", "Prediction", "POSE_WEIGHTS", "SCRATCH_WEIGHTS", "FULL_WEIGHTS", "REGRESSOR_WEIGHTS"]


@dataclass
class Prediction:
    """Everything one photo produced. Joints are in original-image pixels (K, 2)."""
    box: tuple[float, float, float]            # (cx, cy, side) of the square crop
    affine: np.ndarray                         # (2, 3) original -> crop
    crop: np.ndarray                           # (S, S, 3) uint8
    unary: torch.Tensor                        # (K, H, W) the detector's output, as the spatial model reads it
    log_marginal: torch.Tensor | None          # (K, H, W)
    joints: dict = field(default_factory=dict)       # method -> (K, 2) original px
    confidence: dict = field(default_factory=dict)   # method -> (K,)

    def crop_joints(self, method: str) -> np.ndarray:
        return apply_affine(self.affine, self.joints[method])

    def to_crop(self, xy) -> np.ndarray:
        """Original-image pixels (..., 2) -> crop pixels."""
        return apply_affine(self.affine, np.asarray(xy, np.float64))

    def to_photo(self, xy) -> np.ndarray:
        """Crop pixels (..., 2) -> original-image pixels."""
        return apply_affine(invert_affine(self.affine), np.asarray(xy, np.float64))


def frame(rgb: np.ndarray):
    """The box (cx, cy, side) an upload is framed with, and the person it frames (None when
    nobody was found): the most prominent person the person detector finds
    (`lab.people.find_people`), refined by the pose landmarks (`refine`) and squared as the
    models were trained (`square_box`); the whole photo when nobody is found. The app takes
    the same steps (`lab.app.photos.auto_box`, cached per photo and picked person)."""
    from lab import people
    found = people.find_people(rgb)
    if not found:
        h, w = rgb.shape[:2]
        return tuple(float(v) for v in image_box(w, h)), None
    person = people.refine(rgb, people.most_prominent(found))
    return tuple(float(v) for v in people.square_box(person)), person


class PoseLab:
    """The detector + spatial model and the regressor, loaded once."""

    def __init__(self, pose_path: Path = POSE_WEIGHTS, regressor_path: Path | None = REGRESSOR_WEIGHTS,
                 engine: bool = True):
        if not Path(pose_path).is_file():
            raise LabError(f"no detector weights at {pose_path}: train some (pose-lab train) or restore pretrained/.")
        self.pose, self.pose_meta = io.load(pose_path)
        fold_batchnorm(self.pose)                  # same function, ~10% faster (lab.models.fuse)
        self.data = io.data_config(self.pose_meta)
        self.codec = self.data.codec
        self.regressor, self.regressor_meta = (None, None)
        if regressor_path is not None and Path(regressor_path).is_file():
            self.regressor, self.regressor_meta = io.load(regressor_path)
            fold_batchnorm(self.regressor)
        self.size = self.codec.crop_size
        self.paths = (Path(pose_path), Path(regressor_path) if regressor_path else None)
        self.use_engine = engine
        self._engines: tuple | None = None

    @property
    def engines(self) -> tuple:
        """(detector, regressor) through ONNX Runtime for `predict` (lab.models.engine), compiled
        on first use; an entry is None where PyTorch computes it."""
        if self._engines is None:
            det = compile_module(self.pose.detector, self.paths[0], self.size) if self.use_engine else None
            reg = compile_module(self.regressor, self.paths[1], self.size) \
                if self.use_engine and self.regressor is not None else None
            self._engines = (det, reg)
        return self._engines

    @property
    def spatial(self):
        return self.pose.spatial

    @property
    def unary_is_log(self) -> bool:
        return self.pose.unary_is_log

    def crop(self, rgb: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
        A = box_affine(box, self.size)
        return crop_image(rgb, A, self.size), A

    def tensor(self, crop: np.ndarray) -> torch.Tensor:
        """(S, S, 3) or (N, S, S, 3) uint8 -> (N, 3, S, S) float in [0, 1]."""
        t = torch.from_numpy(np.ascontiguousarray(crop))
        return to_input((t[None] if t.dim() == 3 else t).permute(0, 3, 1, 2))

    @torch.no_grad()
    def predict(self, rgb: np.ndarray, box=None, flip: bool = False,
                scales: tuple[float, ...] = (1.0,)) -> Prediction:
        """Run all predictors on the crop `box` (default: `frame(rgb)`, as the app frames an
        upload); `flip` and several `scales` average the unary over mirrored and zoomed crops
        (test-time augmentation, `lab.models.predict.heatmaps`)."""
        box = box or frame(rgb)[0]
        crop, A = self.crop(rgb, box)
        x = self.tensor(crop)
        detect, regress = self.engines
        out = heatmaps(self.pose, x, flip, scales=scales, detect=detect)
        pred = Prediction(box, A, crop, out["unary"][0], out.get("log_marginal", [None])[0])
        for method, key, log in (("unary", "unary", self.unary_is_log), ("marginal", "log_marginal", True)):
            if key in out:
                xy, val = self.codec.decode(out[key], log_space=log)
                pred.joints[method] = self.codec.to_photo(xy[0], A)
                pred.confidence[method] = (peak_share(out[key]) if log else val)[0].numpy()
        if self.regressor is not None:
            y = denormalise((regress or self.regressor)(x).float(), self.size)[0].numpy()
            pred.joints["regressor"] = apply_affine(invert_affine(A), y)
            pred.confidence["regressor"] = np.full(len(y), np.nan)
        return pred

    # ------------------------------------------------------------------ looking inside (the app)
    @torch.no_grad()
    def inspect(self, crop: np.ndarray, off: tuple[int, ...] = ()) -> dict:
        """Every stage of the detector for one crop (S, S, 3) uint8, batch dimension dropped:
        "inputs" [(3, s, s) per bank], "banks" [(C, h, w) per bank], "combined" (C', H, W),
        "unary" (K, H, W). Banks in `off` are switched off (their features zeroed)."""
        out = self.pose.detector.inspect(self.tensor(crop), off)
        return {k: [t[0] for t in v] if isinstance(v, list) else v[0] for k, v in out.items()}

    @torch.no_grad()
    def crop_heatmaps(self, crops: np.ndarray, batch: int = 32) -> dict:
        """Unary (N, K, H, W) and, with a spatial model, log-marginal maps for crops (N, S, S, 3) uint8."""
        res: dict[str, list] = {}
        for i in range(0, len(crops), batch):
            for k, v in heatmaps(self.pose, self.tensor(crops[i:i + batch])).items():
                if k in ("unary", "log_marginal"):
                    res.setdefault(k, []).append(v)
        return {k: torch.cat(v) for k, v in res.items()}

    def belief(self, unary: torch.Tensor) -> torch.Tensor:
        """The unary as the spatial model reads it (and the app draws it): ReLU of an MSE-trained
        unary, or the per-joint softmax over pixels of a softmax-trained one. (..., K, H, W)."""
        return belief(unary, BELIEF_OF_LOSS[self.pose.detector.cfg.loss])
