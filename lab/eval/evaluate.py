"""`pose-lab eval`: PCK of a model on a split, from the raw folders or a cache.

Predictions are made on person-centred crops (box from the annotation: centre
and scale, as MPII provides) and mapped back to original pixels through the
crop's exact inverse affine; PCK is computed there.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
import torch

from lab.config import data_root
from lab.data.cache import PoseCache, make_sample
from lab.data.codec import HeatmapCodec
from lab.data.splits import split_records
from lab.data.transforms import apply_affine, box_affine, invert_affine, person_box
from lab.errors import LabError
from lab.eval.pck import pck, pck_curve
from lab.joints import NAMES, SHORT
from lab.models import io
from lab.models.predict import predict_pose, predict_regressor
from lab.progress import track

PROTOCOL = ("PCK@alpha, torso = |left shoulder - right hip| of the ground truth; "
            "crop box from the annotation; unlabelled joints excluded")


def load_split(split: str, cache: str | None, data: str | None, model_data, every: int = 1) -> dict:
    """Crops (N, 3, S, S) uint8, original-pixel ground truth and affines for a split (with
    `every` > 1, only every `every`-th image: a sample for quick reproduction checks)."""
    if cache:
        c = PoseCache(cache)[split]
        images = torch.from_numpy(c.images[::every]).permute(0, 3, 1, 2).contiguous()
        ids, affine, lab = list(c.ids)[::every], c.affine[::every], c.labelled[::every]
        gt = np.stack([apply_affine(invert_affine(a), xy) for a, xy in zip(affine, c.coords[::every])])
        gt[~lab] = 0
        return {"ids": ids, "images": images, "gt": gt, "labelled": lab, "affine": affine,
                "source": f"cache {cache}"}
    recs = split_records(data_root(data), split, model_data.val_fraction, model_data.seed)[::every]
    crop_only = dataclasses.replace(model_data, context=1.0)    # the crop alone, no surroundings
    samples = [make_sample(r, crop_only) for r in track(recs, f"eval crops {split}", unit="images")]
    return {"ids": [s.id for s in samples],
            "images": torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).contiguous(),
            "gt": np.stack([r.coords for r in recs]), "labelled": np.stack([r.labelled for r in recs]),
            "affine": np.stack([s.affine for s in samples]), "source": f"raw folders {data_root(data)}"}


def mean_crop_pose(cache: str | None, data: str | None, model_data) -> np.ndarray:
    """The training set's average pose in crop pixels (K, 2): the "mean pose" baseline
    predicts it for every crop, whatever the photo shows."""
    if cache:
        c = PoseCache(cache)["train"]
        xy, lab = c.coords, c.labelled
    else:
        recs = split_records(data_root(data), "train", model_data.val_fraction, model_data.seed)
        xy, lab = [], []
        for r in recs:
            A = box_affine(person_box(r.coords, r.labelled, model_data.margin), model_data.crop_size)
            xy.append(apply_affine(A, r.coords))
            lab.append(r.labelled)
        xy, lab = np.stack(xy), np.stack(lab)
    w = lab[..., None].astype(float)
    return (xy * w).sum(0) / np.maximum(w.sum(0), 1)


def predict_split(model, meta: dict, images: torch.Tensor, flip: bool,
                  scales: tuple[float, ...] = ()) -> dict:
    """Method name -> crop-pixel joints (N, K, 2): as is, with `flip` also "_flip", and with
    `scales` also "_multiscale" (the crop at each zoom, each mirrored too, unaries averaged)."""
    if meta["kind"] == "regressor":
        return {"regressor": predict_regressor(model, images).numpy()}
    codec = HeatmapCodec.from_config(meta.get("data", {}))
    runs = [("", False, (1.0,))] + ([("_flip", True, (1.0,))] if flip else []) + \
        ([("_multiscale", True, tuple(scales))] if scales else [])
    res = {}
    for suffix, f, sc in runs:
        out = predict_pose(model, images, codec, flip=f, scales=sc)
        for name in ("unary", "marginal"):
            if name in out:
                res[name + suffix] = out[name].numpy()
    return res


def pose_spread(crop_xy: np.ndarray, labelled: np.ndarray, size: int) -> float:
    """How much poses vary from image to image: the mean over joints of the standard deviation
    of each joint's crop position across images, in crop sides (0 for one pose for all)."""
    sd = []
    for k in range(crop_xy.shape[1]):
        p = crop_xy[labelled[:, k], k]
        if len(p) > 1:
            sd.append(float(np.sqrt(p.var(0).sum())))
    return float(np.mean(sd)) / size if sd else float("nan")


def method_entry(orig: np.ndarray, d: dict, ids) -> dict:
    p = pck(orig, d["gt"], d["labelled"], 0.2)
    return {"pck@0.2": {"mean": p["mean"], "per_joint": dict(zip(SHORT, map(float, p["per_joint"]))),
                        "groups": p["groups"], "limbs": p["limbs"]},
            "curve": pck_curve(orig, d["gt"], d["labelled"]),
            "predictions": {i: np.round(q, 2).tolist() for i, q in zip(ids, orig)}}


def score(crop_xy: dict, affine: np.ndarray, d: dict) -> dict:
    """PCK@0.2 (mean, groups, the 12 limb joints) of each method's crop-pixel joints
    {method: (N, K, 2)}, mapped to the original pixels through each crop's affine (N, 2, 3)."""
    out = {}
    for name, xy in crop_xy.items():
        orig = np.stack([apply_affine(invert_affine(a), p) for a, p in zip(affine, xy)])
        p = pck(orig, d["gt"], d["labelled"], 0.2)
        out[name] = {"mean": p["mean"], "groups": p["groups"], "limbs": p["limbs"]}
    return out


def photo_measures(model, meta: dict, d: dict, records, mdata, upload_path: bool, robustness: bool) -> dict:
    """The measures learners' photos depend on (`lab.eval.robustness`): the upload path
    {"nobody_found", "methods"} and the robustness table {condition: methods}."""
    from lab.eval import robustness as R
    res = {}
    if upload_path:
        c = R.upload_path_crops(records, mdata.crop_size)
        res["upload_path"] = {"nobody_found": c["nobody_found"],
                              "methods": score(predict_split(model, meta, _nchw(c["images"]), False), c["affine"], d)}
    if robustness:
        res["robustness"] = {}
        for cond in R.CONDITIONS:
            c = R.condition_crops(records, cond, mdata.crop_size, mdata.margin)
            res["robustness"][cond] = score(predict_split(model, meta, _nchw(c["images"]), False), c["affine"], d)
    return res


def _nchw(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def bank_ablation(model, meta: dict, d: dict) -> dict:
    """PCK@0.2 (mean and groups) of the unary and the marginal with each resolution bank
    switched off in turn: what each resolution contributes. {"bank 1 off": {method: ...}}."""
    codec = HeatmapCodec.from_config(meta.get("data", {}))
    out = {}
    for b in range(len(model.detector.features.banks)):
        pred = predict_pose(model, d["images"], codec, off=(b,))
        row = {}
        for name in ("unary", "marginal"):
            if name in pred:
                orig = np.stack([apply_affine(invert_affine(a), p) for a, p in zip(d["affine"], pred[name].numpy())])
                p = pck(orig, d["gt"], d["labelled"], 0.2)
                row[name] = {"mean": p["mean"], "groups": p["groups"]}
        out[f"bank {b + 1} off"] = row
    return out


@torch.no_grad()
def edge_ablation(model, meta: dict, d: dict, batch: int = 64) -> dict:
    """PCK@0.2 (mean and groups) of the marginal with each limb's two messages (A <- v and
    v <- A) left out in turn: what each edge of the graph contributes. The unary is computed
    once; only the spatial model reruns. {"r_kne-r_ank off": {"marginal": ...}}."""
    from lab.joints import LIMBS
    from lab.models.predict import heatmaps, to_input
    if model.spatial is None:
        return {}
    model.eval()
    codec = HeatmapCodec.from_config(meta.get("data", {}))
    unary = torch.cat([heatmaps(model, to_input(d["images"][i:i + batch]))["unary"]
                       for i in track(range(0, len(d["images"]), batch), "edge ablation", unit="batches")])
    sp, out = model.spatial, {}
    for a, v in LIMBS:
        if (a, v) not in sp.edges:
            continue
        mask = sp.edge_mask([(a, v), (v, a)])
        xy = torch.cat([codec.decode_crop(sp.log_marginal_masked(unary[i:i + batch], mask), log_space=True)[0]
                        for i in range(0, len(unary), batch)]).numpy()              # (N, K, 2) crop px
        orig = np.stack([apply_affine(invert_affine(af), p) for af, p in zip(d["affine"], xy)])
        p = pck(orig, d["gt"], d["labelled"], 0.2)
        out[f"{SHORT[a]}-{SHORT[v]} off"] = {"marginal": {"mean": p["mean"], "groups": p["groups"]}}
    return out


def evaluate(model_path: Path, split: str = "test", cache: str | None = None, data: str | None = None,
             flip: bool = False, ablate_banks: bool = False, ablate_edges: bool = False,
             scales: tuple[float, ...] = (), upload_path: bool = False, robustness: bool = False,
             every: int = 1) -> dict:
    """PCK of every method a checkpoint offers (and the mean-pose baseline) on a split; with
    `upload_path` / `robustness` also the measures learners' photos depend on (these read the
    original photos, so they need the dataset folders). `every` > 1 evaluates every
    `every`-th image only (a quick check that stored predictions reproduce; not a result)."""
    model, meta = io.load(model_path)
    mdata = io.data_config(meta)
    d = load_split(split, cache, data, mdata, every)
    t0 = time.perf_counter()
    crop_preds = predict_split(model, meta, d["images"], flip, scales)
    seconds = time.perf_counter() - t0
    n = len(d["ids"])
    crop_preds["mean_pose"] = np.broadcast_to(mean_crop_pose(cache, data, mdata), (n, len(NAMES), 2))
    result = {"model": str(model_path), "sha256": sha256(model_path), "kind": meta["kind"],
              "split": split, "images": n, "source": d["source"], "flip_test": flip, "scales": list(scales),
              "protocol": PROTOCOL, "joints": list(NAMES), "seconds": seconds, "methods": {},
              "pose_spread": {}}
    gt_crop = np.stack([apply_affine(a, g) for a, g in zip(d["affine"], d["gt"])])
    result["pose_spread"]["ground_truth"] = pose_spread(gt_crop, d["labelled"], mdata.crop_size)
    for name, xy in crop_preds.items():
        orig = np.stack([apply_affine(invert_affine(a), p) for a, p in zip(d["affine"], xy)])
        result["methods"][name] = method_entry(orig, d, d["ids"])
        result["pose_spread"][name] = pose_spread(np.asarray(xy), d["labelled"], mdata.crop_size)
    if ablate_banks and meta["kind"] == "pose":
        result["ablations"] = {"banks": bank_ablation(model, meta, d)}
    if ablate_edges and meta["kind"] == "pose" and model.spatial is not None:
        result.setdefault("ablations", {})["edges"] = edge_ablation(model, meta, d)
    if upload_path or robustness:
        records = split_records(data_root(data), split, mdata.val_fraction, mdata.seed)[::every]
        if [r.id for r in records] != list(d["ids"]):
            raise LabError("the cache's photos are not the dataset's split: rebuild it with pose-lab prepare")
        result.update(photo_measures(model, meta, d, records, mdata, upload_path, robustness))
    result["ground_truth"] = {i: np.round(g, 2).tolist() for i, g in zip(d["ids"], d["gt"])}
    result["labelled"] = {i: l.astype(int).tolist() for i, l in zip(d["ids"], d["labelled"])}
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def summary_table(res: dict) -> str:
    """Mean and grouped PCK@0.2 (in %) per method, as a plain-text table; then the upload path,
    the robustness conditions and the ablations, one row per method."""
    groups = ["head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"]

    def row(label: str, p: dict, width: int) -> str:
        return f"{label:<{width}}"[:width] + "".join(f"{100 * p['groups'][g]:9.1f}" for g in groups) \
            + f"{100 * p['mean']:9.1f}"

    lines = [f"{res['kind']} on {res['split']} ({res['images']} images, {res['source']})",
             f"{'method':<20}" + "".join(f"{g:>9}" for g in groups) + f"{'mean':>9}"]
    lines += [row(name, m["pck@0.2"], 20) for name, m in res["methods"].items()]
    extra = {"upload path": res["upload_path"]["methods"]} if res.get("upload_path") else {}
    extra.update(res.get("robustness") or {})
    ablations = res.get("ablations") or {}
    extra.update({**ablations.get("banks", {}), **ablations.get("edges", {})})
    lines += [row(f"{name}, {label}", p, 24) for label, rows in extra.items() for name, p in rows.items()]
    return "\n".join(lines)
