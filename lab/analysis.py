"""The lab's explanations, computed: peak competition, second peaks, where the
spatial model changed the detector's answer, and which examples show it best.

Everything a page says in words about the maps ("a strong second peak", "the
veto helped", "the prior moved") is decided here, from `lab.infer` outputs, so
the views only display it and the judgements are tested.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lab.joints import FLIP_PAIRS, FLIP_PERM, L_HIP, L_SHOULDER, NAMES, R_HIP, R_SHOULDER
from lab.models import graph, trunk
from lab.names import CONFIDENCE_HELP

STRONG_SECOND_PEAK = 0.5   # a second peak at least half as high as the first is worth a look
MOVED = 2.0                # heatmap px: a joint that moved further was overruled by the spatial model
CORRECT = 0.1              # of the crop side: a peak this close to the annotation counts as right
# swapped score >= this share of the as-found score: left/right is a close call. Chosen on the
# bundled mini set's validation crops (shipped model): at 0.5 the page flagged 59 of 100 crops, 8 of
# the 10 with two or more swapped pairs among them; at 0.6 it flags 48 and still catches the same 8.
LR_CLOSE = 0.6
SIDE_ON = 0.15             # |left - right| across the body under this share of the torso: seen side-on


# ------------------------------------------------------------------ the detector, in words
def describe_detector(cfg) -> dict:
    """What the pages say about a part detector, read from its `DetectorConfig`
    (`PoseLab.pose.detector.cfg`), so no caption claims what another model does.

    Keys: "banks" (how the resolution banks are built), "unary" (what a unary map
    holds and how it was trained), "drawn" (what the app draws as a unary heatmap:
    `PoseLab.belief`), "belief_tex" (what a message convolves, in the lessons'
    notation, e_v = the unary of v), "confidence" (what the unary's confidence means).
    """
    if trunk.is_lite(cfg.trunk):
        banks = (f"{cfg.banks} banks share one ImageNet-pretrained trunk ({trunk.NAMES[cfg.trunk]}), run on "
                 "each bank's own resolution; each bank has its own small decoder that merges the "
                 f"trunk's stride-{', '.join(map(str, trunk.strides_up_to(cfg.trunk_stride)[::-1]))} "
                 f"features into {cfg.width} channels at 1/4 of its input")
    else:
        banks = (f"{cfg.banks} banks, each its own stack of {cfg.bank_depth} conv layers ({cfg.width} "
                 "channels) trained from random weights on the pose data alone, as in the paper, "
                 "ending at 1/4 of its input")
    if cfg.loss == "softmax":
        return {"banks": banks,
                "unary": "logits, trained with a softmax cross-entropy over each map's pixels: "
                         "higher means more likely, on no fixed scale",
                "drawn": "the softmax of each map over its pixels: a probability map of where the joint "
                         "is (each map sums to 1)",
                "belief_tex": r"\mathrm{softmax}(e_v)",
                "belief_words": "its softmax over pixels (a probability map)",
                "confidence": "share of the detector's probability map in its peak pixel "
                              "(1 = all of it; 1/1024 = spread evenly)"}
    return {"banks": banks,
            "unary": "scores, trained by mean squared error towards a Gaussian bump of height 1 at the "
                     "joint and 0 elsewhere (the paper's loss)",
            "drawn": "the scores with negatives clipped to 0 (ReLU): not probabilities, but trained "
                     "towards 1 at the joint and 0 elsewhere",
            "belief_tex": r"\mathrm{ReLU}(e_v)",
            "belief_words": "its positive part (ReLU)",
            "confidence": "height of the unary's peak (trained towards 1 at a joint, 0 elsewhere)"}


def confidence_help(cfg) -> dict:
    """Method -> what its confidence number means, for this detector (`names.CONFIDENCE_HELP`
    with the unary's entry fitted to the detector's loss)."""
    return {**CONFIDENCE_HELP, "unary": describe_detector(cfg)["confidence"]}


# ------------------------------------------------------------------ peaks
def second_peak(heatmap, min_distance: int = 2, log_space: bool = False) -> dict:
    """The global peak of one map (H, W) and the highest *other* local maximum.

    A local maximum is a pixel no smaller than its 8 neighbours. The second peak
    is the highest one more than `min_distance` pixels (Chebyshev) from the
    global peak, so the shoulders of the first peak do not count. Values are
    compared as given (maps >= 0, e.g. a unary's belief) or, with `log_space`, as
    exp(l - max l) (a marginal scaled to a peak of 1).

    Returns {"first": (x, y), "first_value", "second": (x, y) or None,
    "second_value", "ratio"}, positions in heatmap pixels and ratio =
    second_value / first_value in [0, 1] (0 when there is no second peak or the
    map is <= 0 everywhere).
    """
    h = torch.as_tensor(heatmap).detach().to(torch.float64)
    if h.dim() != 2:
        raise ValueError(f"second_peak expects one (H, W) map, got shape {tuple(h.shape)}")
    h = torch.exp(h - h.max()) if log_space else torch.relu(h)
    H, W = h.shape
    fy, fx = divmod(int(h.argmax()), W)
    first = float(h[fy, fx])
    out = {"first": (fx, fy), "first_value": first, "second": None, "second_value": 0.0, "ratio": 0.0}
    if first <= 0:
        return out
    pooled = F.max_pool2d(h[None, None], 3, stride=1, padding=1)[0, 0]
    ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    far = torch.maximum((xs - fx).abs(), (ys - fy).abs()) > min_distance
    cand = torch.where((h >= pooled) & (h > 0) & far, h, torch.full_like(h, -1.0))
    sy, sx = divmod(int(cand.argmax()), W)
    if cand[sy, sx] > 0:
        second = float(h[sy, sx])
        out.update(second=(sx, sy), second_value=second, ratio=second / first)
    return out


def peak_competition(unary, log_marginal, min_distance: int = 2) -> dict:
    """How the spatial model changed the contest between a unary's two best peaks.

    unary (a belief map >= 0), log_marginal: one joint's maps (H, W). With p1, p2 the
    unary's first and second peaks (`second_peak`), returns the unary ratio u(p2) / u(p1)
    and the marginal ratio m(p2) / m(p1), each map read as its maximum in the 3x3
    window around the peak (a peak may move by a pixel). A marginal ratio far below
    the unary ratio means the product suppressed the second peak; above 1 means it
    preferred the second peak. `change` = unary_ratio - min(marginal_ratio, 1).
    Keys: first, second (heatmap px or None), unary_ratio, marginal_ratio, change.
    """
    sp = second_peak(unary, min_distance)
    out = {"first": sp["first"], "second": sp["second"], "unary_ratio": sp["ratio"],
           "marginal_ratio": float("nan"), "change": 0.0}
    if sp["second"] is None:
        return out
    lm = torch.as_tensor(log_marginal).detach().to(torch.float64)
    H, W = lm.shape

    def near(p):
        x, y = p
        return lm[max(y - 1, 0):min(y + 2, H), max(x - 1, 0):min(x + 2, W)].max()

    ratio = float(torch.exp(near(sp["second"]) - near(sp["first"])))
    out.update(marginal_ratio=ratio, change=sp["ratio"] - min(ratio, 1.0))
    return out


# ------------------------------------------------------------------ one photo
def peak_report(lab, pred, min_distance: int = 2) -> list[dict]:
    """Per joint, what the detector's unary says and where the spatial model disagrees.

    Each dict (crop pixels): joint, unary (the unary's decoded peak, as in
    `pred.joints["unary"]`), unary_value (the belief's height there), second (the
    belief's second local maximum or None), second_ratio, strong (second_ratio >=
    STRONG_SECOND_PEAK), marginal (the detector + spatial model's joint, or None),
    moved (distance unary -> marginal in crop px, NaN without a spatial model) and
    overruled (moved more than MOVED heatmap px).
    """
    codec = lab.codec
    belief = lab.belief(pred.unary)
    unary = pred.crop_joints("unary")
    marginal = pred.crop_joints("marginal") if "marginal" in pred.joints else None
    rows = []
    for k in range(belief.shape[0]):
        sp = second_peak(belief[k], min_distance)
        row = {"joint": k, "unary": unary[k], "unary_value": float(belief[k].max()),
               "second": None if sp["second"] is None else codec.to_crop(np.asarray(sp["second"], np.float64)),
               "second_ratio": sp["ratio"], "strong": sp["ratio"] >= STRONG_SECOND_PEAK,
               "marginal": None if marginal is None else marginal[k], "moved": float("nan"), "overruled": False}
        if marginal is not None:
            row["moved"] = float(np.linalg.norm(marginal[k] - row["unary"]))
            row["overruled"] = row["moved"] > MOVED * codec.stride
        rows.append(row)
    return rows


def message_panels(lab, pred, a: int) -> list[dict]:
    """One inference for joint A, one neighbour at a time: `SpatialModel.step_through` on the
    photo's unary, with each step's running contest between the unary's two peaks.
    Each step: v, message, log_sum, marginal (H, W), unary_v (v's belief), competition."""
    steps = lab.spatial.step_through(pred.unary[None], a)
    belief = lab.belief(pred.unary)
    for s in steps:
        s["unary_v"] = belief[s["v"]]
        s["competition"] = peak_competition(belief[a], s["log_sum"])
    return steps


# ------------------------------------------------------------------ examples from data
@torch.no_grad()
def veto_examples(lab, crops: np.ndarray, coords: np.ndarray, labelled: np.ndarray,
                  joints=None, top: int = 4) -> list[dict]:
    """Crops where the spatial model moved a joint from a wrong place to the right one.

    For each crop (N, S, S, 3) and joint, the unary's peak and the marginal's peak are
    compared with the annotation (coords (N, K, 2) crop px, labelled (N, K)). An example
    is a joint whose unary peak is wrong (further than CORRECT * S from the annotation)
    and whose marginal peak is right. Ranked by how far the unary was off, one joint per
    crop; each dict: index, joint, unary, marginal, truth (crop px), unary_error,
    marginal_error (crop px), unary_ratio (its second peak / first, when it has one).
    """
    if lab.spatial is None:
        return []
    maps = lab.crop_heatmaps(crops)
    codec, S = lab.codec, lab.size
    u_xy, _ = codec.decode_crop(maps["unary"], log_space=lab.unary_is_log)        # (N, K, 2)
    m_xy, _ = codec.decode_crop(maps["log_marginal"], log_space=True)
    truth = torch.as_tensor(np.asarray(coords, np.float64))
    ue = (u_xy.double() - truth).norm(dim=-1).numpy()                              # (N, K)
    me = (m_xy.double() - truth).norm(dim=-1).numpy()
    ok = np.asarray(labelled, bool) & (ue > CORRECT * S) & (me <= CORRECT * S)
    if joints is not None:
        ok[:, [k for k in range(ok.shape[1]) if k not in set(joints)]] = False
    found = []
    for i, k in zip(*np.nonzero(ok)):
        found.append({"index": int(i), "joint": int(k), "unary": u_xy[i, k].numpy(), "marginal": m_xy[i, k].numpy(),
                      "truth": truth[i, k].numpy(), "unary_error": float(ue[i, k]),
                      "marginal_error": float(me[i, k]),
                      "unary_ratio": second_peak(lab.belief(maps["unary"][i, k]))["ratio"]})
    found.sort(key=lambda d: (-d["unary_error"], d["index"], d["joint"]))
    seen: set[int] = set()
    found = [d for d in found if not (d["index"] in seen or seen.add(d["index"]))]
    return found[:top]


def veto_verdict(first_error: float, second_error: float, crop_size: int) -> str:
    """Did suppressing a second peak help? "helped", "wrong" (the suppressed peak was the
    closer one) or "neither" (the kept peak is not right either)."""
    if second_error < first_error:
        return "wrong"
    return "neither" if first_error > CORRECT * crop_size else "helped"


# ------------------------------------------------------------------ priors
def describe_prior(spatial, a: int, v: int, stride: int) -> dict:
    """Where p(A | v) puts A relative to v, learned and at its start (the histogram), and how
    training changed it: {"learned": (dx, dy), "histogram": (dx, dy) heatmap px, "shift" px,
    "same_side", "learned_crop": (dx, dy) crop px, "sentence"}."""
    from lab.models.spatial import prior_drift
    rows = {(r["a"], r["v"]): r for r in prior_drift(spatial)}
    if a == v:
        return {"learned": (0, 0), "histogram": (0, 0), "shift": 0.0, "same_side": True,
                "learned_crop": (0, 0), "sentence": f"The self edge: {NAMES[a]} blurred around its own unary."}
    r = rows[(a, v)]
    (lx, ly), (hx, hy) = r["learned_mode"], r["histogram_mode"]
    where = _direction(lx, ly)
    sentence = (f"{NAMES[a]} is most likely {where} {NAMES[v]}{' in the image' if lx else ''}: "
                f"Δ = ({lx}, {ly}) heatmap px "
                f"({lx * stride}, {ly * stride} crop px). ")
    if r["shift"] == 0:
        sentence += "Training kept the histogram's peak exactly where it was."
    else:
        sentence += (f"The histogram's peak was at ({hx}, {hy}); training moved it {r['shift']:.1f} px"
                     + ("" if r["same_side"] else ", to the other side of v: this prior lost its anatomy") + ".")
    return {"learned": (lx, ly), "histogram": (hx, hy), "shift": r["shift"], "same_side": r["same_side"],
            "learned_crop": (lx * stride, ly * stride), "sentence": sentence}


def _direction(dx: int, dy: int) -> str:
    """Where (dx, dy) heatmap px puts A, as words to put before v's name: "6 px above",
    "2 px below and 3 px to the left of", "at the same place as"."""
    if dx == 0 and dy == 0:
        return "at the same place as"
    parts = []
    if dy:
        parts.append(f"{abs(dy)} px {'below' if dy > 0 else 'above'}")
    if dx:
        parts.append(f"{abs(dx)} px to the {'right' if dx > 0 else 'left'} of")
    return " and ".join(parts)


def neighbour_names(spatial, a: int) -> list[str]:
    return [NAMES[v] + (" (itself)" if v == a else "") for v in graph.neighbours(spatial.edges, a)]


# ------------------------------------------------------------------ left and right
def _near(m: torch.Tensor, p: tuple[int, int]) -> float:
    """A map's maximum in the 3x3 window around p = (x, y) (a peak may move by a pixel)."""
    x, y = p
    H, W = m.shape
    return float(m[max(y - 1, 0):min(y + 2, H), max(x - 1, 0):min(x + 2, W)].max())


def left_right(belief) -> dict:
    """How firmly the unary tells the person's left from right: the score of the two best
    assignments of the six left/right pairs (`lab.joints.FLIP_PAIRS`).

    belief: (K, H, W) maps >= 0 (`PoseLab.belief` of a unary). Each joint's peak p_k is its
    map's maximum. The assignment "as found" puts every joint at its own peak; "left and
    right swapped" puts each paired joint at its partner's peak (FLIP_PERM), the centre
    joints staying. An assignment's score is the mean over the K joints of the joint's map
    read at its position (3x3 window). As found is the best assignment by construction;
    `ratio` = swapped / as found says how close the second best comes (1 = the maps cannot
    tell left from right, 0 = no doubt).

    Returns {"assignments": [{"name", "score", "perm"}] best first, "ratio", "close"
    (ratio >= LR_CLOSE), "pairs": [{"joints": (r, l), "ratio"}] per pair}.
    """
    b = torch.relu(torch.as_tensor(belief).detach().to(torch.float64))
    K, H, W = b.shape
    peaks = [(int(i) % W, int(i) // W) for i in b.reshape(K, -1).argmax(1)]
    at = lambda k, p: _near(b[k], p)
    own = [at(k, peaks[k]) for k in range(K)]
    swapped = [at(k, peaks[FLIP_PERM[k]]) for k in range(K)]
    a0, a1 = float(np.mean(own)), float(np.mean(swapped))
    pairs = []
    for r, l in FLIP_PAIRS:
        s0, s1 = own[r] + own[l], swapped[r] + swapped[l]
        pairs.append({"joints": (r, l), "ratio": s1 / s0 if s0 > 0 else 0.0})
    ratio = a1 / a0 if a0 > 0 else 0.0
    return {"assignments": [{"name": "as found", "score": a0, "perm": tuple(range(K))},
                            {"name": "left and right swapped", "score": a1, "perm": FLIP_PERM}],
            "ratio": ratio, "close": ratio >= LR_CLOSE, "pairs": pairs}


def facing(joints) -> str:
    """Which way the person faces, from joints (K, 2) in image pixels (x right) labelled
    person-centrically: "camera" (their right on the image's left), "away" (their right on
    the image's right: a back view, or left and right swapped) or "side-on" (the two sides
    overlap, |difference| under SIDE_ON of the torso)."""
    j = np.asarray(joints, np.float64)
    across = (j[L_SHOULDER, 0] - j[R_SHOULDER, 0]) + (j[L_HIP, 0] - j[R_HIP, 0])
    torso = np.linalg.norm(j[[L_SHOULDER, R_SHOULDER]].mean(0) - j[[L_HIP, R_HIP]].mean(0))
    if abs(across) < SIDE_ON * max(torso, 1e-9):
        return "side-on"
    return "camera" if across > 0 else "away"


def left_right_report(lab, pred, method: str = "unary") -> dict:
    """`left_right` on a prediction's unary, plus which way the person faces by `method`'s
    joints (`facing`) and whether to show the learner: `suspect` when left/right is a
    close call or the joints say the person has their back to the camera, and a sentence."""
    out = left_right(lab.belief(pred.unary))
    out["facing"] = facing(pred.crop_joints(method))
    out["suspect"] = out["close"] or out["facing"] == "away"
    best, second = out["assignments"]
    why = []
    if out["close"]:
        weak = [NAMES[q["joints"][0]].split()[1] + "s" for q in out["pairs"] if q["ratio"] >= LR_CLOSE]
        why.append(f"the heatmaps score the swapped assignment at {out['ratio']:.0%} of the best"
                   + (f" (closest: {', '.join(weak)})" if weak else ""))
    if out["facing"] == "away":
        why.append("the person's right side is on the image's right: a back view, or left and right swapped")
    out["sentence"] = ("Left and right may be swapped: " + "; ".join(why) + "." if why else
                       f"Left and right look clear: swapping them scores {out['ratio']:.0%} of the best.")
    return out
