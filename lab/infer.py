"""From a photo to poses: framing, cropping, and the three predictors.

The app and `pose-lab eval` both go through here, so a learner sees exactly
what was evaluated. Nothing here trains; see lab.train.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lab.data.targets import (STRONG_SECOND_PEAK, crop_to_heatmap, decode, heatmap_to_crop,
                              peak_competition, second_peak)
from lab.data.transforms import box_affine, crop_image, image_box, invert_affine, apply_affine
from lab.errors import LabError
from lab.eval.predict import heatmaps, marginal_confidence, to_input
from lab.models import graph, io
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

    def to_crop(self, xy) -> np.ndarray:
        """Original-image pixels (..., 2) -> crop pixels."""
        return apply_affine(self.affine, np.asarray(xy, np.float64))

    def to_photo(self, xy) -> np.ndarray:
        """Crop pixels (..., 2) -> original-image pixels."""
        return apply_affine(invert_affine(self.affine), np.asarray(xy, np.float64))


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


    # ------------------------------------------------------------------ looking inside (the app)
    @torch.no_grad()
    def inspect(self, crop: np.ndarray) -> dict:
        """Every stage of the detector for one crop (S, S, 3) uint8, batch dimension dropped:
        "inputs" [(3, s, s) per bank], "banks" [(C, h, w) per bank], "combined" (C', H, W), "unary" (K, H, W)."""
        out = self.pose.detector.inspect(self.tensor(crop))
        return {k: [t[0] for t in v] if isinstance(v, list) else v[0] for k, v in out.items()}

    @torch.no_grad()
    def crop_heatmaps(self, crops: np.ndarray, batch: int = 32) -> dict:
        """Unary (N, K, H, W) and, with a spatial model, log-marginal maps for crops (N, S, S, 3) uint8."""
        res: dict[str, list] = {}
        for i in range(0, len(crops), batch):
            x = to_input(torch.from_numpy(np.ascontiguousarray(crops[i:i + batch])).permute(0, 3, 1, 2))
            for k, v in heatmaps(self.pose, x).items():
                if k in ("unary", "log_marginal"):
                    res.setdefault(k, []).append(v)
        return {k: torch.cat(v) for k, v in res.items()}

    def empirical_priors(self, coords: np.ndarray, labelled: np.ndarray, crop_size: int) -> np.ndarray:
        """The displacement histograms (E, k, k) the spatial model's kernels start from
        (`displacement_histograms`), for crop-pixel joints (N, K, 2) of crops `crop_size` wide,
        rescaled to this model's crop size. Same edges, size and blur as the model."""
        from lab.models.spatial import displacement_histograms
        cfg = self.spatial.cfg
        xy = crop_to_heatmap(torch.as_tensor(coords, dtype=torch.float64) * (self.size / crop_size), STRIDE)
        return displacement_histograms(xy.numpy(), np.asarray(labelled, bool), self.spatial.edges,
                                       cfg.heatmap_size, cfg.hist_blur)

    @torch.no_grad()
    def find_suppressed_peaks(self, crops: np.ndarray, joints, top: int = 3, coords=None,
                              labelled=None, min_unary_ratio: float = 0.3, distinct: bool = False) -> list[dict]:
        """Crops where the spatial model most clearly removed a unary's second peak.

        For each crop (N, S, S, 3) and joint in `joints`, `peak_competition` between
        the unary's two best peaks; keeps those whose second peak is at least
        `min_unary_ratio` of the first, ranks by `change` (largest first) and returns
        the `top` as dicts: index, joint, unary_ratio, marginal_ratio, change, first,
        second (crop px). With ground truth `coords` (N, K, 2 crop px) and `labelled`,
        also "truth" and the distances of both peaks to it ("first_error", "second_error").
        `distinct`: at most one joint per crop (its best), for varied examples.
        """
        if self.spatial is None:
            return []
        unary = torch.cat([self.pose.detector(to_input(torch.from_numpy(np.ascontiguousarray(crops[i:i + 32]))
                                                       .permute(0, 3, 1, 2))) for i in range(0, len(crops), 32)])
        logm = {}                       # only the joints asked for: the messages into them, not all E edges
        for k in joints:
            ids = [self.spatial.edge_index(k, v) for v in graph.neighbours(self.spatial.edges, k)]
            logm[k] = torch.log(self.spatial.messages(unary, ids)).sum(1)              # (N, H, W)
        found = []
        for i in range(len(crops)):
            for k in joints:
                pc = peak_competition(unary[i, k], logm[k][i])
                if pc["second"] is None or pc["unary_ratio"] < min_unary_ratio or pc["change"] <= 0:
                    continue
                d = {"index": i, "joint": k, **{n: pc[n] for n in ("unary_ratio", "marginal_ratio", "change")},
                     "first": heatmap_to_crop(torch.tensor(pc["first"], dtype=torch.float64), STRIDE).numpy(),
                     "second": heatmap_to_crop(torch.tensor(pc["second"], dtype=torch.float64), STRIDE).numpy()}
                if coords is not None and (labelled is None or labelled[i][k]):
                    t = np.asarray(coords[i][k], np.float64)
                    d.update(truth=t, first_error=float(np.linalg.norm(d["first"] - t)),
                             second_error=float(np.linalg.norm(d["second"] - t)))
                found.append(d)
        found.sort(key=lambda d: (-d["change"], d["index"], d["joint"]))
        if distinct:
            seen: set[int] = set()
            found = [d for d in found if not (d["index"] in seen or seen.add(d["index"]))]
        return found[:top]


def peak_report(pred: Prediction, min_distance: int = 2) -> list[dict]:
    """Per joint, what the detector's unary says and where the spatial model disagrees.

    Each dict (crop pixels): joint, unary (the unary's decoded peak, as in
    `pred.joints["unary"]`), unary_value (its height), second
    (the unary's second local maximum or None, `second_peak`), second_ratio, strong
    (second_ratio >= STRONG_SECOND_PEAK), spatial (the detector + spatial model's
    joint, or None) and moved (distance unary -> spatial, NaN without a spatial model).
    """
    rows = []
    unary = pred.crop_joints("unary")
    spatial = pred.crop_joints("spatial") if "spatial" in pred.joints else None
    to_crop = lambda p: heatmap_to_crop(torch.tensor(p, dtype=torch.float64), STRIDE).numpy()
    for k in range(pred.unary.shape[0]):
        sp = second_peak(pred.unary[k], min_distance)
        row = {"joint": k, "unary": unary[k], "unary_value": float(pred.unary[k].max()),
               "second": to_crop(sp["second"]) if sp["second"] is not None else None,
               "second_ratio": sp["ratio"], "strong": sp["ratio"] >= STRONG_SECOND_PEAK,
               "spatial": None if spatial is None else spatial[k], "moved": float("nan")}
        if spatial is not None:
            row["moved"] = float(np.linalg.norm(spatial[k] - row["unary"]))
        rows.append(row)
    return rows


def load_lab(pose_path=POSE_WEIGHTS, regressor_path=REGRESSOR_WEIGHTS) -> PoseLab:
    if not Path(pose_path).is_file():
        raise LabError(f"no detector weights at {pose_path}: train some (pose-lab train) or restore pretrained/.")
    return PoseLab(Path(pose_path), regressor_path)
