"""Regression to the mean pose: how close each method's poses sit to the training set's
average pose, next to the ground truth's (the Heatmaps vs regression page's study).

- `mean_pose`           the average pose of a set (e.g. the training crops) in the body frame
- `distance_to_mean`    how far each pose sits from the mean pose, in a given pose's frame
- `mean_pose_study`     ground truth vs each method: how close to the mean pose they sit
- `mean_pose_finding`   that study in one honest sentence
- `pose_spreads`, `collapsed`  how much each method's poses vary next to the ground truth's
"""
from __future__ import annotations

import numpy as np

from lab.errors import LabError
from lab.eval.results import _row_mean, body_frame, common_ids, ground_truth, methods_of, stack, to_frame
from lab.joints import GROUPS
from lab.names import METHOD_LABELS


def mean_pose(poses: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Average pose (K, 2), each pose in its own body frame, over labelled joints of usable poses."""
    centre, scale, ok = body_frame(poses, labelled)
    norm = to_frame(poses, centre, scale)
    w = (np.asarray(labelled, bool) & ok[:, None]).astype(float)              # (N, K)
    if w.sum() == 0:
        raise LabError("no pose with a labelled torso to average.")
    return (norm * w[..., None]).sum(0) / np.maximum(w.sum(0), 1)[:, None]


def distance_to_mean(poses: np.ndarray, labelled: np.ndarray, mean: np.ndarray,
                     reference: np.ndarray | None = None, per_joint: bool = False) -> np.ndarray:
    """Per image, mean over labelled joints of |pose_k - mean_k| (N,), in the body frame of
    `reference` (default: the pose itself); per_joint gives (N, K) with NaN where a joint
    does not count. Predictions are measured in their ground truth's frame, so a pose that
    shrinks towards the middle stays shrunk instead of being rescaled to its own size."""
    ref = poses if reference is None else reference
    centre, scale, ok = body_frame(ref, labelled)
    d = np.linalg.norm(to_frame(poses, centre, scale) - np.asarray(mean)[None], axis=-1)
    d = np.where(np.asarray(labelled, bool) & ok[:, None], d, np.nan)
    return d if per_joint else _row_mean(d)


def mean_pose_study(results: list[dict], mean: np.ndarray, methods: tuple[str, ...]) -> dict:
    """How close to the mean pose the ground truth and each method sit, on the test images
    every result has, all in each image's ground-truth body frame. Joints that count: those
    labelled in the ground truth, of images whose ground truth has the four torso joints.

    Returns {"ids", "per_image": {name: (N,)}, "per_joint": {name: (K,) median},
    "average": {name: float}, "median": {name: float}, "poses": {name: (N, K, 2) in the
    frame}, "labelled": (N, K)} with name "ground truth" and each method present."""
    have = methods_of(*results)
    methods = tuple(m for m in methods if m in have)
    ids = common_ids(*results)
    ids = [i for i in ids if all(i in have[m]["predictions"] for m in methods)]
    if not ids:
        raise LabError("the evaluation files share no test images.")
    gt, lab = ground_truth(results[0], ids)
    centre, scale, ok = body_frame(gt, lab)
    lab = lab & ok[:, None]
    out = {"ids": ids, "per_image": {}, "per_joint": {}, "average": {}, "median": {}, "poses": {},
           "labelled": lab}
    for name, poses in (("ground truth", gt), *((m, stack(have[m], "predictions", ids)) for m in methods)):
        d = distance_to_mean(poses, lab, mean, reference=gt, per_joint=True)
        per_image = _row_mean(d)
        out["per_image"][name] = per_image
        out["per_joint"][name] = np.array([np.median(c[~np.isnan(c)]) if (~np.isnan(c)).any() else np.nan
                                           for c in d.T])
        valid = per_image[~np.isnan(per_image)]
        out["average"][name] = float(valid.mean()) if len(valid) else float("nan")
        out["median"][name] = float(np.median(valid)) if len(valid) else float("nan")
        out["poses"][name] = to_frame(poses, centre, scale)
    return out


def mean_pose_finding(study: dict) -> str:
    """What `mean_pose_study` shows, in one or two sentences: which methods sit closer to the
    mean pose than the ground truth does (medians), and whether the spatial model's priors
    pull the detector's answers towards it, more gently than the regressor or not."""
    med = study["median"]
    truth = med["ground truth"]
    closer = [m for m in med if m != "ground truth" and med[m] < truth]
    if closer:
        names = " and ".join(METHOD_LABELS.get(m, m) for m in closer)
        text = f"Here {names} sit{'s' if len(closer) == 1 else ''} closer to the mean than the truth."
    else:
        text = "Here no method sits closer to the mean than the truth."
    if "marginal" in med and med["marginal"] < med.get("unary", truth):
        gentler = "regressor" in med and med["marginal"] > med["regressor"]
        text += (" The spatial model's priors pull towards typical poses too"
                 + (", more gently than the regressor" if gentler else "")
                 + ": they weigh most where the detector's maps are unsure.")
    return text


def pose_spreads(*results: dict) -> dict[str, float]:
    """Name -> pose spread (the eval JSON's "pose_spread": mean over joints of the standard
    deviation of a joint's crop position across test crops, in crop sides), over several
    results (first one wins); "ground_truth" included. {} when no result has it."""
    out: dict[str, float] = {}
    for res in results:
        for name, v in (res.get("pose_spread") or {}).items():
            out.setdefault(name, float(v))
    return out


COLLAPSED = 0.5     # a method whose poses vary less than half as much as the truth's has collapsed


def collapsed(spreads: dict[str, float]) -> list[str]:
    """The methods (not the mean-pose baseline, which never varies) whose spread is below
    COLLAPSED times the ground truth's: they predict much the same pose for every photo."""
    truth = spreads.get("ground_truth")
    if not truth or not np.isfinite(truth):
        return []
    return [m for m, v in spreads.items()
            if m not in ("ground_truth", "mean_pose") and np.isfinite(v) and v < COLLAPSED * truth]


def by_group(per_joint: np.ndarray) -> dict[str, float]:
    """(K,) per-joint values -> the seven groups' means (left and right averaged)."""
    per_joint = np.asarray(per_joint, float)
    return {g: float(np.nanmean(per_joint[list(ix)])) for g, ix in GROUPS.items()}


def furthest_from_mean(study: dict, top: int = 4) -> list[int]:
    """Indices of the test images whose ground truth is furthest from the mean pose (the
    unusual poses; chosen from the ground truth only, not from any method's output)."""
    d = np.nan_to_num(study["per_image"]["ground truth"], nan=-1.0)
    return [int(i) for i in np.argsort(-d, kind="stable")[:top] if d[i] >= 0]
