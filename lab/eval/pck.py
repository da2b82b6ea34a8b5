"""PCK: Percentage of Correct Keypoints.

A predicted joint is correct when |pred - gt| <= alpha * torso, where torso is
the ground truth's left shoulder - right hip distance. Joints that are not
labelled, and images whose torso is not labelled, do not count.
"""
from __future__ import annotations

import numpy as np

from lab.joints import GROUPS, LIMB_JOINTS, TORSO

ALPHAS = np.round(np.linspace(0, 0.5, 51), 3)     # 0, 0.01, ..., 0.5: lesson 5 reads the curves out to 0.5


def normalised_errors(pred: np.ndarray, gt: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """|pred - gt| / torso, (N, K); NaN where the joint does not count."""
    torso = np.linalg.norm(gt[:, TORSO[0]] - gt[:, TORSO[1]], axis=-1)          # (N,)
    ok = labelled & labelled[:, [TORSO[0]]] & labelled[:, [TORSO[1]]] & (torso[:, None] > 0)
    err = np.linalg.norm(pred - gt, axis=-1) / np.where(torso > 0, torso, 1)[:, None]
    return np.where(ok, err, np.nan)


def pck(pred, gt, labelled, alpha: float = 0.2) -> dict:
    """{"per_joint": (K,) in [0, 1], "mean": float, "groups": {name: float}, "counted": (K,),
    "limbs": the mean over the 12 limb joints (`LIMB_JOINTS`, BlazePose's)}."""
    err = normalised_errors(np.asarray(pred, float), np.asarray(gt, float), np.asarray(labelled, bool))
    counted = (~np.isnan(err)).sum(0)
    hits = (err <= alpha).sum(0)                                                 # NaN compares False
    per_joint = np.where(counted > 0, hits / np.maximum(counted, 1), np.nan)
    groups = {g: float(np.nanmean(per_joint[list(ix)])) for g, ix in GROUPS.items()}
    return {"per_joint": per_joint, "mean": float(np.nanmean(per_joint)), "groups": groups,
            "counted": counted, "limbs": float(np.nanmean(per_joint[list(LIMB_JOINTS)]))}


def pck_curve(pred, gt, labelled, alphas=ALPHAS) -> dict:
    """Mean and per-joint PCK at each alpha in [0, 0.5] (steps of 0.01)."""
    rows = [pck(pred, gt, labelled, a) for a in alphas]
    return {"alpha": [float(a) for a in alphas], "mean": [r["mean"] for r in rows],
            "per_joint": [[float(v) for v in r["per_joint"]] for r in rows]}


# ------------------------------------------------------------------ figures as shown
def points(v: float | None) -> float | None:
    """A PCK in [0, 1] as the lab shows it: percent, rounded once to 0.1 (None stays None)."""
    return None if v is None or v != v else round(100.0 * float(v), 1)


def points_gain(a: float | None, b: float | None) -> float | None:
    """a - b in percentage points, as shown: each rounded first (`points`), then subtracted, so
    a displayed difference always equals the difference of the displayed numbers."""
    pa, pb = points(a), points(b)
    return None if pa is None or pb is None else round(pa - pb, 1)
