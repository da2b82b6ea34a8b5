"""Compare person detectors for framing everyday photos (docs/person_detectors.md).

    python scripts/compare_person_detectors.py [--data ../shared/datasets] [--single 100] [--multi 40]

Candidates (each skipped, with a note, when its package is absent):

  blazepose   MediaPipe's person detector (pose_detection.tflite from the mediapipe wheel, run by
              LiteRT) on the whole photo and overlapping tiles: lab.people.find_people, its box
              mapped to the training framing by the same calibration as every other candidate
  blazepose-square   the same detections framed by lab.people.square_box (from the detector's
              mid-hip point and body radius; constants from --fit-framing)
  blazepose-refined  the same + lab.people.refine on every person (MediaPipe's pose landmark
              model on the person's region), framed by square_box around the landmark joints
  mp-pose     MediaPipe Pose (legacy solution, one person: detector + landmarks), box around landmarks;
              needs the whole mediapipe==0.10.21 package (measured in a separate environment)
  hog         OpenCV's HOG + linear SVM people detector (Dalal & Triggs), copy 640 px long
  hog-1280    the same on a copy 1280 px long (smaller people, slower)
  haar        OpenCV's Haar cascade haarcascade_fullbody.xml, copy 640 px long
  lab-auto    the lab's framing today: the pose model on the whole photo padded to a square,
              a box fitted around the joints it finds (one person)
  lab-search  the lab's own pose model as a multi-scale sliding-window person detector:
              unary heatmaps over a 3-level pyramid, window score = mean over joints of the peak

Data (never LSP im1001-im2000, the test set):

  calibration  LSPET images with all 14 joints annotated (first ones): fits each detector's mapping
               from its box to the lab's training framing (centre offset, width and height scale)
  single       real photos with one annotated person: LSP im0001-im1000 and further LSPET images
  multi        4000x3000 composites: 2 or 3 LSP training images pasted side by side, each scaled
               so its person's square is 5-45% of the long side, on a plain textured background

Ground truth, from the annotation: the square box (cx, cy, side) of lab.data.transforms.person_box
(margin 0.3), and the "person rectangle" with the same centre: the joints' box grown by 0.15 x the
joints' longer extent on every side. A detection counts when its calibrated rectangle has IoU >= 0.5
with a ground-truth rectangle (greedy, highest score first). Framing error (matched people): the
distance between the calibrated square's centre and the annotation square's, and |side / side_gt - 1|,
both as a share of the annotation square's side; "joints in crop" is the share of annotated joints
inside the calibrated square. LSP and LSPET photos may show other, unannotated people, so precision
on them is a lower bound. Times: one 4000x3000 composite, median of 5 runs, 2 threads.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.data.transforms import person_box  # noqa: E402

MARGIN = 0.3
CANVAS = (4000, 3000)                                  # (W, H) of the composites and the timing photo


# ------------------------------------------------------------------ ground truth
def gt_of(coords: np.ndarray, labelled: np.ndarray) -> dict:
    """Annotation boxes: square (cx, cy, side) and rectangle (x0, y0, x1, y1) of one person."""
    cx, cy, side = person_box(coords, labelled, MARGIN)
    pts = coords[labelled]
    lo, hi = pts.min(0), pts.max(0)
    pad = MARGIN / 2 * float((hi - lo).max())
    return {"square": (cx, cy, side), "rect": (lo[0] - pad, lo[1] - pad, hi[0] + pad, hi[1] + pad),
            "joints": pts}


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


# ------------------------------------------------------------------ data
def load_sets(root: Path, n_cal: int, n_single: int, n_multi: int, seed: int = 0):
    from lab.data.datasets import read_lsp, read_lspet
    lsp = [r for r in read_lsp(root) if int(r.id[-4:]) <= 1000]          # training half only
    lspet = [r for r in read_lspet(root) if r.labelled.all()]
    rng = np.random.default_rng(seed)
    cal = lspet[:n_cal]
    single = [lsp[i] for i in rng.choice(len(lsp), n_single // 2, replace=False)] + \
        lspet[n_cal:n_cal + n_single - n_single // 2]
    multi = [composite(lsp, rng, int(rng.integers(2, 4))) for _ in range(n_multi)]
    return cal, single, multi


def background(rng, size=CANVAS) -> np.ndarray:
    """A plain photo-like background (H, W, 3) uint8: a smooth colour field with fine noise."""
    W, H = size
    field = Image.fromarray(rng.integers(40, 215, (3, 4, 3), dtype=np.uint8)).resize((W, H), Image.BILINEAR)
    noise = rng.normal(0, 6, (H // 4, W // 4, 1)).repeat(4, 0).repeat(4, 1)
    return np.clip(np.asarray(field, np.float32) + noise, 0, 255).astype(np.uint8)


def composite(records, rng, n: int, size=CANVAS) -> dict:
    """n LSP training photos pasted side by side on one canvas at different scales.
    Returns {"image": (H, W, 3) uint8, "gts": [gt per person], "ids": [...]}."""
    W, H = size
    canvas = background(rng, size)
    placed, gts, ids = [], [], []
    tries = 0
    while len(placed) < n and tries < 200:
        tries += 1
        r = records[int(rng.integers(len(records)))]
        g = gt_of(r.coords, r.labelled)
        frac = math.exp(rng.uniform(math.log(0.05), math.log(0.45 if n == 2 else 0.32)))
        k = frac * max(W, H) / g["square"][2]                # scale factor photo -> canvas
        img = Image.open(r.path).convert("RGB")
        w, h = round(img.width * k), round(img.height * k)
        if w >= W or h >= H:
            continue
        x0, y0 = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        if any(x0 < b[2] and b[0] < x0 + w and y0 < b[3] and b[1] < y0 + h for b in placed):
            continue
        canvas[y0:y0 + h, x0:x0 + w] = np.asarray(img.resize((w, h), Image.BILINEAR))
        placed.append((x0, y0, x0 + w, y0 + h))
        sx, sy = w / img.width, h / img.height
        xy = (r.coords + 0.5) * [sx, sy] - 0.5 + [x0, y0]   # pixel centres at integers
        gts.append(gt_of(xy, r.labelled))
        ids.append(r.id)
    return {"image": canvas, "gts": gts, "ids": ids}


# ------------------------------------------------------------------ candidates
# Each returns a list of (x0, y0, x1, y1, score) in original pixels, best first.
def work_copy(rgb: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Resized copy whose long side is `long_side`, and original px per copy px."""
    h, w = rgb.shape[:2]
    f = max(h, w) / long_side
    img = Image.fromarray(rgb)
    size = (max(1, round(w / f)), max(1, round(h / f)))
    img = img.reduce(max(1, int(f // 2))) if f >= 4 else img
    return np.asarray(img.resize(size, Image.BOX if f > 1 else Image.BILINEAR)), f


def cand_blazepose():
    from lab.people import find_people

    def run(rgb):
        return [(*p.box, p.score) for p in find_people(rgb)]
    return run


def cand_blazepose_square():
    """lab.people's own framing: square_box from the detector's keypoints (no box calibration)."""
    from lab.people import find_people, square_box

    def run(rgb):
        out = []
        for p in find_people(rgb):
            cx, cy, side = square_box(p)
            out.append((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, p.score))
        return out
    return run


def fit_framing(records) -> dict:
    """Robust (median) fit of lab.people's framing constants on annotated photos (one person each),
    against the annotation's square: FRAME_* (detector only: centre = hip + radius (DX, DY),
    side = RADIUS radius) and REFINED_* (after refine: person_box of the landmark joints, centre
    moved by side (DX, DY), side x SCALE)."""
    from lab import people as P
    rows, ref = [], []
    for r in records:
        g = gt_of(r.coords, r.labelled)
        rgb = r.image()
        best = max(P.find_people(rgb), key=lambda p: iou(p.box, g["rect"]), default=None)
        if best is None or iou(best.box, g["rect"]) < 0.2:
            continue
        rows.append((*best.hip, best.radius, *g["square"]))
        q = P.refine(rgb, best)
        cx, cy, side = person_box(q.joints, np.ones(len(q.joints), bool), MARGIN)
        ref.append((cx, cy, side, *g["square"]))
    a = np.array(rows, np.float64)                  # (n, 6): hx hy r gcx gcy gside
    b = np.array(ref, np.float64)                   # (n, 6): cx cy side gcx gcy gside
    dx, dy = np.median((a[:, 3:5] - a[:, 0:2]) / a[:, 2:3], 0)
    rdx, rdy = np.median((b[:, 3:5] - b[:, 0:2]) / b[:, 2:3], 0)
    return {"FRAME_DX": float(dx), "FRAME_DY": float(dy), "FRAME_RADIUS": float(np.median(a[:, 5] / a[:, 2])),
            "REFINED_DX": float(rdx), "REFINED_DY": float(rdy), "REFINED_SCALE": float(np.median(b[:, 5] / b[:, 2])),
            "people": len(a)}


def cand_blazepose_refined():
    """lab.people with refine: MediaPipe's pose landmarks on every detected person, framed by square_box."""
    from lab.people import find_people, refine, square_box

    def run(rgb):
        out = []
        for p in find_people(rgb):
            q = refine(rgb, p)
            # the landmark joints' "person rectangle", as the ground truth's, moved and scaled
            # like square_box: same centre and long side as square_box(q)
            g = gt_of(q.joints, np.ones(len(q.joints), bool))
            cx, cy, side = square_box(q)
            k = side / g["square"][2]
            w, h = (g["rect"][2] - g["rect"][0]) * k, (g["rect"][3] - g["rect"][1]) * k
            out.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, p.score))
        return out
    return run


def cand_mp_pose():
    import mediapipe as mp
    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)

    def run(rgb):
        res = pose.process(np.ascontiguousarray(rgb))
        if res.pose_landmarks is None:
            return []
        h, w = rgb.shape[:2]
        p = np.array([(l.x * w, l.y * h) for l in res.pose_landmarks.landmark])
        return [(*p.min(0), *p.max(0), 1.0)]
    return run


def cand_hog(long_side: int):
    import cv2
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def run(rgb):
        img, f = work_copy(rgb, long_side)
        pad = 32                                   # HOG's window wants a little context round a tight crop
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        rects, wts = hog.detectMultiScale(img, winStride=(8, 8), padding=(8, 8), scale=1.05)
        out = [((x - pad) * f, (y - pad) * f, (x + w - pad) * f, (y + h - pad) * f, float(s))
               for (x, y, w, h), s in zip(np.asarray(rects).reshape(-1, 4), np.ravel(wts))]
        return sorted(out, key=lambda b: -b[4])
    return run


def cand_haar(long_side: int = 640):
    import cv2
    casc = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_fullbody.xml"))

    def run(rgb):
        img, f = work_copy(rgb, long_side)
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        pad = 32
        g = cv2.copyMakeBorder(g, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        rects, _, wts = casc.detectMultiScale3(g, scaleFactor=1.05, minNeighbors=3, outputRejectLevels=True)
        out = [((x - pad) * f, (y - pad) * f, (x + w - pad) * f, (y + h - pad) * f, float(s))
               for (x, y, w, h), s in zip(np.asarray(rects).reshape(-1, 4), np.ravel(wts))]
        return sorted(out, key=lambda b: -b[4])
    return run


def _load_lab():
    from lab.infer import PoseLab
    return PoseLab()


def cand_lab_auto():
    lab = _load_lab()

    def run(rgb):
        cx, cy, side = old_self_framing(lab, rgb)
        return [(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, 1.0)]
    return run


def old_self_framing(lab, rgb, margin: float = 0.3):
    """The lab's framing before the person detector (PoseLab.auto_box, removed from the
    library; kept here as the comparison's baseline): the model run on the whole photo,
    the box fitted around the joints it finds, kept if plausible."""
    from lab.data.transforms import image_box
    h, w = rgb.shape[:2]
    whole = image_box(w, h)
    first = lab.predict(rgb, whole)
    pts = first.joints["marginal" if "marginal" in first.joints else "unary"]
    lo, hi = pts.min(0), pts.max(0)
    side = float((hi - lo).max()) * (1 + margin)
    if side < 0.25 * whole[2]:
        return whole
    cx, cy = (lo + hi) / 2
    return float(cx), float(cy), min(side, whole[2] * 1.2)


def cand_lab_search(levels=(256, 448, 768), min_score: float = 0.0):
    """The pose model's unary detector, fully convolutional over a pyramid: a 128 px window
    (the training crop) slides at stride 16 px; its score is the mean over joints of the
    highest unary inside it; the box is fitted around those peaks (margin 0.3)."""
    import torch
    import torch.nn.functional as F

    from lab.models.detector import STRIDE
    lab = _load_lab()
    det = lab.pose.detector.eval()
    win = 128 // STRIDE                                        # window in heatmap cells

    @torch.no_grad()
    def run(rgb):
        found = []
        for L in levels:
            img, f = work_copy(rgb, L)
            h, w = img.shape[:2]
            ph, pw = max(0, 128 - h), max(0, 128 - w)
            x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255     # (1, 3, h, w)
            x = F.pad(x, (0, pw + (-(w + pw)) % 16, 0, ph + (-(h + ph)) % 16))
            u = det(x)[0]                                      # (K, h/4, w/4)
            peak = F.max_pool2d(u[None], win, stride=4)[0]     # (K, nh, nw): best unary per window
            score = peak.mean(0)                               # (nh, nw)
            for idx in torch.topk(score.flatten(), min(8, score.numel())).indices.tolist():
                iy, ix = divmod(idx, score.shape[1])
                sub = u[:, iy * 4:iy * 4 + win, ix * 4:ix * 4 + win]          # (K, win, win)
                am = sub.flatten(1).argmax(1)
                pts = torch.stack([am % win + ix * 4, am // win + iy * 4], -1).double()
                pts = (pts * STRIDE + (STRIDE - 1) / 2) * f    # heatmap cell -> original px
                cx, cy, side = person_box(pts.numpy(), np.ones(len(pts), bool), MARGIN)
                found.append((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, float(score[iy, ix])))
        found.sort(key=lambda b: -b[4])
        keep = []
        for b in found:                                        # non-maximum suppression
            if b[4] >= min_score and all(iou(b, k) < 0.3 for k in keep):
                keep.append(b)
        return keep[:10]
    return run


CANDIDATES = {
    "blazepose": ("MediaPipe person detector + tiles (lab.people)",
                  "ai-edge-litert==2.3.0 + weights from the mediapipe==0.10.21 wheel", cand_blazepose),
    "blazepose-square": ("the same, framed by lab.people.square_box (keypoints)",
                         "ai-edge-litert==2.3.0 + weights from the mediapipe==0.10.21 wheel", cand_blazepose_square),
    "blazepose-refined": ("the same + refine: pose landmarks per person, lab.people.square_box",
                          "ai-edge-litert==2.3.0 + weights from the mediapipe==0.10.21 wheel", cand_blazepose_refined),
    "mp-pose": ("MediaPipe Pose solution (1 person, landmarks)", "mediapipe==0.10.21 (whole package)",
                cand_mp_pose),
    "hog": ("OpenCV HOG people detector, 640 px copy", "opencv-python-headless", lambda: cand_hog(640)),
    "hog-1280": ("OpenCV HOG people detector, 1280 px copy", "opencv-python-headless", lambda: cand_hog(1280)),
    "haar": ("OpenCV Haar full-body cascade, 640 px copy", "opencv-python-headless", cand_haar),
    "lab-auto": ("lab today: pose model on the whole photo, box around its joints", "(none)", cand_lab_auto),
    "lab-search": ("lab pose model as a multi-scale window search", "(none)", cand_lab_search),
}


# ------------------------------------------------------------------ calibration and scoring
def calibrate(dets_per_image, gts_per_image) -> tuple[float, float, float, float]:
    """Fit box -> annotation rectangle: cx = bx + ax * bw, cy = by + ay * bh, w = sw * bw, h = sh * bh
    (medians over each image's best-overlapping detection)."""
    rows = []
    for dets, gts in zip(dets_per_image, gts_per_image):
        for g in gts:
            best = max(dets, key=lambda d: iou(d, g["rect"]), default=None)
            if best is None or iou(best, g["rect"]) < 0.2:
                continue
            bw, bh = best[2] - best[0], best[3] - best[1]
            gr = g["rect"]
            rows.append(((gr[0] + gr[2] - best[0] - best[2]) / 2 / bw, (gr[1] + gr[3] - best[1] - best[3]) / 2 / bh,
                         (gr[2] - gr[0]) / bw, (gr[3] - gr[1]) / bh))
    if len(rows) < 5:
        return 0.0, 0.0, 1.0, 1.0
    return tuple(float(v) for v in np.median(np.array(rows), 0))


def apply_calib(d, c):
    ax, ay, sw, sh = c
    bw, bh = d[2] - d[0], d[3] - d[1]
    cx, cy = (d[0] + d[2]) / 2 + ax * bw, (d[1] + d[3]) / 2 + ay * bh
    w, h = sw * bw, sh * bh
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, d[4])


def score_set(dets_per_image, gts_per_image, calib, long_sides=None) -> dict:
    """Recall, precision, top pick and framing errors at IoU 0.5 (see the module docstring)."""
    tp = n_det = n_gt = top_hit = 0
    centre, scale, inside, by_size = [], [], [], {}
    for i, (dets, gts) in enumerate(zip(dets_per_image, gts_per_image)):
        dets = [apply_calib(d, calib) for d in dets]
        n_det += len(dets)
        n_gt += len(gts)
        free = list(range(len(gts)))
        for j, d in enumerate(dets):
            o = [(iou(d, gts[k]["rect"]), k) for k in free]
            if not o or max(o)[0] < 0.5:
                continue
            _, k = max(o)
            free.remove(k)
            tp += 1
            top_hit += j == 0 and len(gts) == 1
            g = gts[k]
            gcx, gcy, gs = g["square"]
            cx, cy, s = (d[0] + d[2]) / 2, (d[1] + d[3]) / 2, max(d[2] - d[0], d[3] - d[1])
            centre.append(math.hypot(cx - gcx, cy - gcy) / gs)
            scale.append(abs(s / gs - 1))
            p = g["joints"]
            inside.append(float(((np.abs(p[:, 0] - cx) <= s / 2) & (np.abs(p[:, 1] - cy) <= s / 2)).mean()))
        if long_sides is not None:
            for k, g in enumerate(gts):
                b = size_bin(g["square"][2] / long_sides[i])
                hit = k not in free
                by_size.setdefault(b, []).append(hit)
    out = {"recall": tp / max(n_gt, 1), "precision": tp / max(n_det, 1), "people": n_gt,
           "detections": n_det, "centre_err": float(np.median(centre)) if centre else float("nan"),
           "scale_err": float(np.median(scale)) if scale else float("nan"),
           "joints_in_crop": float(np.mean(inside)) if inside else float("nan")}
    if long_sides is None:
        out["top_hit"] = top_hit / max(len(gts_per_image), 1)
    else:
        out["recall_by_size"] = {b: (float(np.mean(v)), len(v)) for b, v in sorted(by_size.items())}
    return out


SIZE_BINS = (0.08, 0.12, 0.2, 0.3)


def size_bin(frac: float) -> str:
    """Person square side as a share of the photo's long side -> a label."""
    lo = 0.0
    for hi in SIZE_BINS:
        if frac < hi:
            return f"{lo:.2f}-{hi:.2f}"
        lo = hi
    return f">{SIZE_BINS[-1]:.2f}"


def time_candidate(run, rgb, repeats: int = 5) -> float:
    """Median wall time (ms) of run(rgb), after one warm-up call."""
    return time_both(run, rgb, repeats)[0]


def time_both(run, rgb, repeats: int = 5) -> tuple[float, float]:
    """Median wall and process-CPU time (ms) of run(rgb), after one warm-up call. On a busy
    machine the wall time is inflated; the CPU time much less."""
    run(rgb)
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        run(rgb)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return 1000 * float(np.median(walls)), 1000 * float(np.median(cpus))


# ------------------------------------------------------------------ main
def main(argv=None) -> None:
    from lab.config import data_root
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="dataset root holding lsp/ and lspet/")
    p.add_argument("--calibration", type=int, default=120)
    p.add_argument("--single", type=int, default=160)
    p.add_argument("--multi", type=int, default=40)
    p.add_argument("--only", nargs="*", default=None, help="candidate names (default: all available)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--report", nargs="+", default=None, metavar="JSON",
                   help="only print the tables from earlier --json files (later files override earlier)")
    p.add_argument("--time-only", action="store_true",
                   help="only time every candidate, back to back, on one 4000x3000 composite (wall and CPU)")
    p.add_argument("--fit-framing", action="store_true",
                   help="only fit lab.people's FRAME_* constants on the calibration photos and print them")
    a = p.parse_args(argv)
    if a.report:
        results = {}
        for f in a.report:
            results.update(json.loads(Path(f).read_text()))
        report(results)
        return

    import torch
    torch.set_num_threads(a.threads)
    try:
        import cv2
        cv2.setNumThreads(a.threads)
    except ImportError:
        pass
    if a.time_only:
        photo = composite([r for r in __import__("lab.data.datasets", fromlist=["read_lsp"]).read_lsp(
            data_root(a.data)) if int(r.id[-4:]) <= 1000], np.random.default_rng(0), 3)["image"]
        print(f"| candidate | wall ms / 4000x3000 | CPU ms | ({a.threads} threads, median of 5) |\n|---|---:|---:|---|")
        for name, (desc, dep, make) in CANDIDATES.items():
            if a.only and name not in a.only:
                continue
            try:
                run = make()
            except Exception as e:
                print(f"| {name} | skipped ({type(e).__name__}) | | |", flush=True)
                continue
            wall, cpu = time_both(run, photo)
            print(f"| {name} | {wall:.0f} | {cpu:.0f} | |", flush=True)
        return
    cal, single, multi = load_sets(data_root(a.data), a.calibration, a.single, a.multi)
    print(f"calibration: {len(cal)} LSPET photos; single: {len(single)} photos (LSP im0001-im1000 + LSPET); "
          f"multi: {len(multi)} composites {CANVAS[0]}x{CANVAS[1]} with "
          f"{sum(len(c['gts']) for c in multi)} people", flush=True)
    timing_photo = multi[0]["image"]
    if a.fit_framing:
        print(json.dumps(fit_framing(cal), indent=1))
        return

    results = {}
    for name, (desc, dep, make) in CANDIDATES.items():
        if a.only and name not in a.only:
            continue
        try:
            run = make()
        except Exception as e:                      # package absent or model missing
            print(f"{name}: skipped ({type(e).__name__}: {e})", flush=True)
            continue
        t0 = time.perf_counter()
        d_cal = [run(r.image()) for r in cal]
        g_cal = [[gt_of(r.coords, r.labelled)] for r in cal]
        own = name in ("blazepose-square", "blazepose-refined")     # lab.people's own framing, no refit
        calib = (0.0, 0.0, 1.0, 1.0) if own else calibrate(d_cal, g_cal)
        d_single = [run(r.image()) for r in single]
        g_single = [[gt_of(r.coords, r.labelled)] for r in single]
        d_multi = [run(c["image"]) for c in multi]
        res = {"description": desc, "dependency": dep, "calibration": calib,
               "single": score_set(d_single, g_single, calib),
               "multi": score_set(d_multi, [c["gts"] for c in multi], calib, [max(CANVAS)] * len(multi)),
               "ms_4000x3000": time_candidate(run, timing_photo)}
        results[name] = res
        print(f"{name}: done in {time.perf_counter() - t0:.0f} s; calibration {np.round(calib, 3).tolist()}; "
              f"{res['ms_4000x3000']:.0f} ms", flush=True)
    report(results)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


def report(results: dict) -> None:
    ref = results.get("blazepose", {}).get("ms_4000x3000")
    print("\n| candidate | single: recall | single: precision* | single: top pick right | multi: recall | "
          "multi: precision | centre error | side error | joints in crop | ms / 4000x3000 | x blazepose |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        s, m = r["single"], r["multi"]
        ratio = f"{r['ms_4000x3000'] / ref:.2f}" if ref else "-"
        print(f"| {name} | {s['recall']:.2f} | {s['precision']:.2f} | {s['top_hit']:.2f} | {m['recall']:.2f} | "
              f"{m['precision']:.2f} | {100 * s['centre_err']:.1f}% / {100 * m['centre_err']:.1f}% | "
              f"{100 * s['scale_err']:.1f}% / {100 * m['scale_err']:.1f}% | "
              f"{s['joints_in_crop']:.2f} / {m['joints_in_crop']:.2f} | {r['ms_4000x3000']:.0f} | {ratio} |")
    print("\n(*) single-person photos may show unannotated people: precision there is a lower bound.")
    print("centre / side error and joints in crop: single / multi, medians (means for joints) over matched people.")
    bins = sorted({b for r in results.values() for b in r["multi"]["recall_by_size"]})
    print("\nmulti-person recall by person size (square side / photo long side; count):\n")
    print("| candidate | " + " | ".join(bins) + " |")
    print("|---|" + "---:|" * len(bins))
    for name, r in results.items():
        rb = r["multi"]["recall_by_size"]
        print(f"| {name} | " + " | ".join(f"{rb[b][0]:.2f} ({rb[b][1]})" if b in rb else "-" for b in bins) + " |")


if __name__ == "__main__":
    main()
