"""Touching the model: change the input or the model and recompute every stage.

  - occlude a rectangle of the crop (`occlude`), recompute the maps (`maps`) and say which
    joints moved and by how far (`displacement`);
  - plant a joint: replace neighbour v's unary by a single peak where the learner clicked
    (`planted_unary`, built by the codec) and follow the message into A (`plant`);
  - switch off resolution banks (`maps(..., off=...)`, the detector's own switch);
  - drop messages of the spatial graph (`without_edges`, `SpatialModel.log_marginal_masked`);
  - the eval JSON's ablation tables, as rows for a page (`bank_rows`, `edge_rows`).

Everything works on one crop (S, S, 3) uint8 and the maps of one crop (K, H, W), batch
dimension dropped; positions are crop pixels unless said otherwise. The app caches these
results by their inputs; the views only display them.
"""
from __future__ import annotations

import numpy as np
import torch

from lab.eval.pck import points_gain
from lab.joints import NAMES, SHORT
from lab.models import graph
from lab.models.predict import heatmaps, peak_share

GREY = 128                  # the occluder's colour: mid-grey, no edges, no skin
MOVED_PX = 2.0              # heatmap px: a joint that moved further "moved" (as lab.analysis.MOVED)


# ------------------------------------------------------------------ the input
def occlude(crop: np.ndarray, box) -> np.ndarray:
    """A copy of the crop (S, S, 3) uint8 with the rectangle box = (x0, y0, x1, y1) crop px
    (x1, y1 exclusive, clipped to the crop) painted GREY."""
    out = np.array(crop, copy=True)
    h, w = out.shape[:2]
    x0, y0, x1, y1 = (int(round(float(t))) for t in box)
    x0, x1 = sorted((min(max(x0, 0), w), min(max(x1, 0), w)))
    y0, y1 = sorted((min(max(y0, 0), h), min(max(y1, 0), h)))
    out[y0:y1, x0:x1] = GREY
    return out


def box_from_selection(xs, ys, size: int) -> tuple[int, int, int, int] | None:
    """The occlusion box (x0, y0, x1, y1) crop px, x1/y1 exclusive, of a box selection's x and
    y ranges (crop px, any order), clipped to the crop; None for an empty selection."""
    if xs is None or ys is None or len(xs) < 2 or len(ys) < 2:
        return None
    x0, x1 = sorted(float(t) for t in xs[:2])
    y0, y1 = sorted(float(t) for t in ys[:2])
    box = (max(0, int(np.floor(x0 + 0.5))), max(0, int(np.floor(y0 + 0.5))),
           min(size, int(np.floor(x1 + 0.5)) + 1), min(size, int(np.floor(y1 + 0.5)) + 1))
    return box if box[2] > box[0] and box[3] > box[1] else None


# ------------------------------------------------------------------ the maps of one crop
@torch.no_grad()
def maps(lab, crop: np.ndarray, off: tuple[int, ...] = ()) -> dict:
    """The one forward pass (`lab.models.predict.heatmaps`) on one crop, banks in `off`
    switched off: {"unary" (K, H, W), "log_marginal" (K, H, W), without a spatial model absent}."""
    out = heatmaps(lab.pose, lab.tensor(crop), off=tuple(off))
    return {k: out[k][0] for k in ("unary", "log_marginal") if k in out}


@torch.no_grad()
def peaks(lab, m: dict) -> dict:
    """Decoded joints of maps from `maps`: {"unary": (K, 2) crop px, "unary_conf": (K,),
    "marginal", "marginal_conf"}; confidences as `PoseLab.predict` reports them."""
    out = {}
    for name, key, log in (("unary", "unary", lab.unary_is_log), ("marginal", "log_marginal", True)):
        if key in m:
            xy, val = lab.codec.decode_crop(m[key][None].float(), log_space=log)      # (1, K, 2), (1, K)
            out[name] = xy[0].numpy().astype(np.float64)
            out[name + "_conf"] = (peak_share(m[key][None].float()) if log else val)[0].numpy()
    return out


def displacement(lab, before: dict, after: dict) -> list[dict]:
    """Which joints moved between two sets of maps (e.g. without and with an occluder), per
    joint: {"joint", "name", method + "_before"/"_after" (crop px), method + "_moved" (crop px),
    method + "_conf_before"/"_after", "moved" (either method moved more than MOVED_PX heatmap
    px)} for the methods both have ("unary", "marginal")."""
    pb, pa = peaks(lab, before), peaks(lab, after)
    methods = [m for m in ("unary", "marginal") if m in pb and m in pa]
    rows = []
    for k in range(len(NAMES)):
        row = {"joint": k, "name": NAMES[k], "moved": False}
        for m in methods:
            d = float(np.linalg.norm(pa[m][k] - pb[m][k]))
            row.update({f"{m}_before": pb[m][k], f"{m}_after": pa[m][k], f"{m}_moved": d,
                        f"{m}_conf_before": float(pb[m + "_conf"][k]), f"{m}_conf_after": float(pa[m + "_conf"][k])})
            row["moved"] |= d > MOVED_PX * lab.codec.stride
        rows.append(row)
    return rows


def marginal_map(log_marginal: torch.Tensor) -> torch.Tensor:
    """A log-marginal (H, W) as the page draws it: normalised over the pixels (softmax), so it
    sums to 1 and maps of different settings share a scale."""
    lm = torch.as_tensor(log_marginal).float()
    return torch.softmax(lm.flatten(), 0).view(lm.shape)


# ------------------------------------------------------------------ a planted joint
def planted_unary(lab, unary: torch.Tensor, v: int, xy_crop) -> torch.Tensor:
    """The unary (K, H, W) with v's map replaced by a single peak at xy_crop (crop px): the
    codec's training target there (a Gaussian of the codec's sigma, height 1), as the unary of
    a detector sure of v. For a softmax-trained unary (logits) the map is the log of the
    normalised target, so its belief (softmax over pixels) is that target."""
    xy = torch.as_tensor(np.asarray(xy_crop, np.float64), dtype=torch.float32).reshape(1, 1, 2)
    target = lab.codec.encode(xy, torch.ones(1, 1, dtype=torch.bool), normalise=lab.unary_is_log)[0, 0]  # (H, W)
    out = unary.clone()
    out[v] = torch.log(target.clamp_min(1e-12)) if lab.unary_is_log else target
    return out


@torch.no_grad()
def plant(lab, unary: torch.Tensor, a: int, v: int, xy_crop) -> dict:
    """Joint A's side of a planted v: the message v -> A and A's log-marginal, with the real
    unary and with v planted at xy_crop (crop px). Maps (H, W): "message", "log_marginal"
    (planted), "real_message", "real_log_marginal"; "unary_v" (v's planted belief); "a_peak",
    "real_a_peak" (A's marginal peak, crop px); "edge" (the edge index)."""
    sp = lab.spatial
    e = sp.edge_index(a, v)                    # raises ValueError if v is not a neighbour of A
    planted = planted_unary(lab, unary, v, xy_crop)
    both = torch.stack([unary, planted]).float()                                   # (2, K, H, W)
    into_a = [i for i, (t, _) in enumerate(sp.edges) if t == a]                    # only A's messages
    msgs = sp.messages(both, into_a)                                               # (2, n, H, W)
    msg = msgs[:, into_a.index(e)]                                                 # (2, H, W)
    logm = torch.log(msgs).sum(1)                                                  # (2, H, W)
    xy, _ = lab.codec.decode_crop(logm[:, None], log_space=True)                   # (2, 1, 2)
    return {"edge": e, "unary_v": lab.belief(planted)[v], "message": msg[1], "log_marginal": logm[1],
            "real_message": msg[0], "real_log_marginal": logm[0],
            "a_peak": xy[1, 0].numpy(), "real_a_peak": xy[0, 0].numpy()}


# ------------------------------------------------------------------ messages dropped
@torch.no_grad()
def without_edges(lab, unary: torch.Tensor, drop) -> torch.Tensor:
    """The log-marginal (K, H, W) with the messages of the directed edges in `drop`
    ((A, v) pairs: "v's message to A") left out."""
    sp = lab.spatial
    return sp.log_marginal_masked(unary[None].float(), sp.edge_mask(drop))[0]


# ------------------------------------------------------------------ the eval JSON's ablations
def _rows(result: dict | None, kind: str) -> list[dict] | None:
    """Rows {"setting", "label" (in words), "unary", "marginal" (PCK@0.2 means or None), "unary_drop",
    "marginal_drop" (full model minus this setting, as shown: each rounded to 0.1 % first)} of `ablations.<kind>`, the full model
    first; None when the JSON lacks that table."""
    table = ((result or {}).get("ablations") or {}).get(kind)
    if not table:
        return None
    full = {m: (result.get("methods", {}).get(m) or {}).get("pck@0.2", {}).get("mean") for m in ("unary", "marginal")}
    rows = [{"setting": "everything on", **full, "unary_drop": 0.0 if full["unary"] is not None else None,
             "marginal_drop": 0.0 if full["marginal"] is not None else None}]
    rows[0]["label"] = "everything on"
    for name, r in table.items():
        row = {"setting": name, "label": setting_label(name)}
        for m in ("unary", "marginal"):
            v = (r.get(m) or {}).get("mean")
            row[m] = v
            g = points_gain(full[m], v)                 # as shown: each rounded to 0.1 %, then subtracted
            row[m + "_drop"] = None if g is None else g / 100
        rows.append(row)
    return rows


def setting_label(setting: str) -> str:
    """An ablation's key as words: "r_ank-r_kne off" -> "right ankle – right knee messages off";
    other keys ("bank 1 off") as they are."""
    body = setting.removesuffix(" off")
    a, _, v = body.partition("-")
    if a in SHORT and v in SHORT:
        return f"{NAMES[SHORT.index(a)]} – {NAMES[SHORT.index(v)]} messages off"
    return setting


def bank_rows(result: dict | None) -> list[dict] | None:
    """What each resolution bank contributes: `ablations.banks` of an eval JSON as rows."""
    return _rows(result, "banks")


def edge_rows(result: dict | None) -> list[dict] | None:
    """What each limb's messages contribute: `ablations.edges` of an eval JSON as rows."""
    return _rows(result, "edges")


def graph_rows(results: dict[str, dict | None]) -> list[dict] | None:
    """Tree against full graph: one row per graph whose eval JSON is there,
    {"graph", "edges", "unary", "marginal", "gain" (marginal - unary), "worst_group" (name, its
    marginal - unary)}, from the eval JSONs of two models that share one detector. None when
    fewer than two graphs have a JSON."""
    rows = []
    for name, result in results.items():
        methods = (result or {}).get("methods") or {}
        if "marginal" not in methods:
            continue
        u, m = methods["unary"]["pck@0.2"], methods["marginal"]["pck@0.2"]
        gains = {g: points_gain(m["groups"][g], u["groups"][g]) / 100 for g in m["groups"]}   # as shown
        worst = min(gains, key=gains.get)
        rows.append({"graph": name, "edges": len(graph.edges(name, len(SHORT))), "unary": u["mean"],
                     "marginal": m["mean"], "gain": points_gain(m["mean"], u["mean"]) / 100,
                     "worst_group": (worst, gains[worst])})
    return rows if len(rows) >= 2 else None


def limb_name(a: int, v: int) -> str:
    """The key of a limb in `ablations.edges`: "r_kne-r_ank off"."""
    return f"{SHORT[a]}-{SHORT[v]} off"
