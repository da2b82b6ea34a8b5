"""`pose-lab eval`: PCK of a model on a split, from the raw folders or a cache.

Predictions are made on person-centred crops (box from the annotation: centre
and scale, as MPII provides) and mapped back to original pixels through the
crop's exact inverse affine; PCK is computed there.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from lab.config import data_root
from lab.data.cache import PoseCache, make_sample
from lab.data.splits import split_records
from lab.data.transforms import apply_affine, invert_affine
from lab.eval.pck import pck, pck_curve
from lab.eval.predict import predict_pose, predict_regressor
from lab.joints import NAMES, SHORT
from lab.models import io


def load_split(split: str, cache: str | None, data: str | None, model_data) -> dict:
    """Crops (N, 3, S, S) uint8, original-pixel ground truth and affines for a split."""
    if cache:
        c = PoseCache(cache)[split]
        images = torch.from_numpy(c.images).permute(0, 3, 1, 2).contiguous()
        ids, affine, lab = c.ids, c.affine, c.labelled
        gt = np.stack([apply_affine(invert_affine(a), xy) for a, xy in zip(affine, c.coords)])
        gt[~lab] = 0
        return {"ids": ids, "images": images, "gt": gt, "labelled": lab, "affine": affine,
                "source": f"cache {cache}"}
    recs = split_records(data_root(data), split, model_data.val_fraction, model_data.seed)
    samples = [make_sample(r, model_data) for r in recs]
    return {"ids": [s.id for s in samples],
            "images": torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).contiguous(),
            "gt": np.stack([r.coords for r in recs]), "labelled": np.stack([r.labelled for r in recs]),
            "affine": np.stack([s.affine for s in samples]), "source": f"raw folders {data_root(data)}"}


def predict_split(model, meta: dict, images: torch.Tensor, flip: bool) -> dict:
    """Method name -> crop-pixel joints (N, K, 2)."""
    if meta["kind"] == "regressor":
        return {"regressor": predict_regressor(model, images).numpy()}
    out = predict_pose(model, images, flip=flip)
    res = {"unary": out["unary"].numpy()}
    if "marginal" in out:
        res["spatial"] = out["marginal"].numpy()
    return res


def evaluate(model_path: Path, split: str = "test", cache: str | None = None, data: str | None = None,
             flip: bool = False) -> dict:
    model, meta = io.load(model_path)
    d = load_split(split, cache, data, io.data_config(meta))
    t0 = time.perf_counter()
    crop_preds = predict_split(model, meta, d["images"], flip)
    seconds = time.perf_counter() - t0
    result = {"model": str(model_path), "sha256": sha256(model_path), "kind": meta["kind"],
              "split": split, "images": len(d["ids"]), "source": d["source"], "flip_test": flip,
              "protocol": "PCK@alpha, torso = |left shoulder - right hip| of the ground truth; "
                          "crop box from the annotation; unlabelled joints excluded",
              "joints": list(NAMES), "seconds": seconds, "methods": {}}
    for name, xy in crop_preds.items():
        orig = np.stack([apply_affine(invert_affine(a), p) for a, p in zip(d["affine"], xy)])
        p = pck(orig, d["gt"], d["labelled"], 0.2)
        result["methods"][name] = {
            "pck@0.2": {"mean": p["mean"], "per_joint": dict(zip(SHORT, map(float, p["per_joint"]))),
                        "groups": p["groups"]},
            "curve": pck_curve(orig, d["gt"], d["labelled"]),
            "predictions": {i: np.round(q, 2).tolist() for i, q in zip(d["ids"], orig)}}
    result["ground_truth"] = {i: np.round(g, 2).tolist() for i, g in zip(d["ids"], d["gt"])}
    result["labelled"] = {i: l.astype(int).tolist() for i, l in zip(d["ids"], d["labelled"])}
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def summary_table(res: dict) -> str:
    """Mean and grouped PCK@0.2 (in %) per method, as a plain-text table."""
    groups = ["head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"]
    lines = [f"{res['kind']} on {res['split']} ({res['images']} images, {res['source']})",
             f"{'method':<10}" + "".join(f"{g:>9}" for g in groups) + f"{'mean':>9}"]
    for name, m in res["methods"].items():
        p = m["pck@0.2"]
        lines.append(f"{name:<10}" + "".join(f"{100 * p['groups'][g]:9.1f}" for g in groups)
                     + f"{100 * p['mean']:9.1f}")
    return "\n".join(lines)
